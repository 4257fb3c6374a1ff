package store

import (
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/silo-dev/silo/errkind"
)

// A migration brings the schema from version i to i+1, where i is its index
// in the list. Migrations are never edited once released, only appended.
type migration func(*bolt.Tx) error

var migrations = []migration{
	// 1: the initial buckets.
	func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketPools, bucketImages, bucketAliases, bucketInstances, bucketOps} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	},
	// 2: the running instances, apart from the instances so that every
	// command can check them cheaply.
	func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketRunning)
		return err
	},
	// 3: profiles and networks. The default profile holds the root disk
	// on the default pool and eth0 on the default network, and every
	// instance so far applies it.
	func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketProfiles, bucketNetworks} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		t := &Tx{tx: tx}
		if err := t.PutProfile(&Profile{Name: DefaultProfile, Description: "what every instance has unless told otherwise",
			Devices: Devices{
				"root": {"type": "disk", "path": "/", "pool": "default"},
				"eth0": {"type": "nic", "name": "eth0", "network": DefaultNetwork},
			}}); err != nil {
			return err
		}
		insts, err := t.Instances()
		if err != nil {
			return err
		}
		for _, inst := range insts {
			inst.Profiles = []string{DefaultProfile}
			if inst.Pool != "default" {
				inst.Devices = Devices{"root": {"type": "disk", "path": "/", "pool": inst.Pool}}
			}
			if err := t.PutInstance(inst); err != nil {
				return err
			}
		}
		return nil
	},
	// 4: custom volumes, keyed pool/name.
	func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketVolumes)
		return err
	},
	// 5: the server's config, the client certificates it trusts, and its
	// pending trust tokens.
	func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketServerConfig, bucketCertificates, bucketTokens} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	},
	// 6: the event log, keyed by sequence number.
	func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketEvents)
		return err
	},
}

// The profile that the schema starts with, and the network its nic joins,
// which the engine makes on first use.
const (
	DefaultProfile = "default"
	DefaultNetwork = "silobr0"
)

// SchemaVersion is the version this silo writes.
var SchemaVersion = len(migrations)

// Version reads the schema version of a transaction's database (0 when new).
func version(tx *bolt.Tx) int {
	b := tx.Bucket(bucketMeta)
	if b == nil {
		return 0
	}
	v := b.Get(keyVersion)
	if len(v) != 8 {
		return 0
	}
	return int(binary.BigEndian.Uint64(v))
}

// migrate runs, in one transaction, the migrations the database lacks.
// It refuses a database written by a newer silo.
func (s *Store) migrate(list []migration) error {
	// A read-only look first: most commands find the schema current and
	// need no write lock.
	cur := -1
	if err := s.View(func(tx *Tx) error { cur = version(tx.tx); return nil }); err == nil && cur == len(list) {
		return nil
	}
	db, err := s.open(false)
	if err != nil {
		return err
	}
	defer db.Close()
	return db.Update(func(tx *bolt.Tx) error {
		v := version(tx)
		if v > len(list) {
			return errkind.Wrap(errkind.Invalid, "database %s has schema version %d, newer than this silo's %d: upgrade silo", s.path, v, len(list))
		}
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		for ; v < len(list); v++ {
			if err := list[v](tx); err != nil {
				return fmt.Errorf("migrate database to schema version %d: %w", v+1, err)
			}
		}
		buf := make([]byte, 8)
		binary.BigEndian.PutUint64(buf, uint64(v))
		return meta.Put(keyVersion, buf)
	})
}
