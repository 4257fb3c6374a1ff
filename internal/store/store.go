// Package store keeps silo's metadata in a bbolt database: pools, images and
// their aliases, instances with their snapshots, and the operations in flight.
//
// The database file is opened for one transaction at a time and closed right
// after, so that many silo commands can run at once: bbolt's file lock then
// serializes only their short metadata updates, never their storage work.
package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/silo-dev/silo/errkind"
)

// Store is the metadata database at one path.
type Store struct {
	path    string
	timeout time.Duration
}

// DefaultTimeout bounds the wait for another command's transaction.
const DefaultTimeout = 30 * time.Second

// Open makes the database ready: it creates it if need be and brings its
// schema up to date.
func Open(path string, timeout time.Duration) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	s := &Store{path: path, timeout: timeout}
	if err := s.migrate(migrations); err != nil {
		return nil, err
	}
	return s, nil
}

// Path is the database file.
func (s *Store) Path() string { return s.path }

func (s *Store) open(readOnly bool) (*bolt.DB, error) {
	db, err := bolt.Open(s.path, 0o600, &bolt.Options{Timeout: s.timeout, ReadOnly: readOnly})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, errkind.Wrap(errkind.Busy, "database %s: still locked by another silo command after %s", s.path, s.timeout)
		}
		return nil, fmt.Errorf("open database %s: %w", s.path, err)
	}
	return db, nil
}

// View runs fn in a read-only transaction.
func (s *Store) View(fn func(*Tx) error) error {
	db, err := s.open(true)
	if err != nil {
		return err
	}
	defer db.Close()
	return db.View(func(btx *bolt.Tx) error { return fn(&Tx{tx: btx}) })
}

// Update runs fn in a read-write transaction, committed if fn returns nil.
func (s *Store) Update(fn func(*Tx) error) error {
	db, err := s.open(false)
	if err != nil {
		return err
	}
	defer db.Close()
	return db.Update(func(btx *bolt.Tx) error { return fn(&Tx{tx: btx}) })
}

// Tx is one transaction, with typed access to the records.
type Tx struct {
	tx *bolt.Tx
	// profiles caches the profiles read in this transaction: every
	// instance's config is expanded through them, hundreds at a time.
	profiles map[string]*Profile
}

var (
	bucketMeta         = []byte("meta")
	bucketPools        = []byte("pools")
	bucketImages       = []byte("images")
	bucketAliases      = []byte("aliases")
	bucketInstances    = []byte("instances")
	bucketOps          = []byte("ops")
	bucketRunning      = []byte("running")
	bucketProfiles     = []byte("profiles")
	bucketNetworks     = []byte("networks")
	bucketVolumes      = []byte("volumes")
	bucketServerConfig = []byte("server_config")
	bucketCertificates = []byte("certificates")
	bucketTokens       = []byte("tokens")
	bucketEvents       = []byte("events")
	keyVersion         = []byte("version")
)

func get[T any](tx *Tx, bucket []byte, key, kind string) (*T, error) {
	b := tx.tx.Bucket(bucket)
	data := b.Get([]byte(key))
	if data == nil {
		return nil, errkind.Wrap(errkind.NotFound, "%s %q not found", kind, key)
	}
	return decode[T](data, kind, key)
}

func decode[T any](data []byte, kind, key string) (*T, error) {
	v := new(T)
	if err := json.Unmarshal(data, v); err != nil {
		return nil, fmt.Errorf("decode %s %q: %w", kind, key, err)
	}
	return v, nil
}

func put(tx *Tx, bucket []byte, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return tx.tx.Bucket(bucket).Put([]byte(key), data)
}

func del(tx *Tx, bucket []byte, key, kind string) error {
	b := tx.tx.Bucket(bucket)
	if b.Get([]byte(key)) == nil {
		return errkind.Wrap(errkind.NotFound, "%s %q not found", kind, key)
	}
	return b.Delete([]byte(key))
}

func all[T any](tx *Tx, bucket []byte) ([]*T, error) {
	var out []*T
	err := tx.tx.Bucket(bucket).ForEach(func(k, data []byte) error {
		v, err := decode[T](data, string(bucket), string(k))
		if err != nil {
			return err
		}
		out = append(out, v)
		return nil
	})
	return out, err
}

func has(tx *Tx, bucket []byte, key string) bool {
	return tx.tx.Bucket(bucket).Get([]byte(key)) != nil
}
