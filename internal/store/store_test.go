package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/silo-dev/silo/errkind"
)

func open(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "silo.db"), DefaultTimeout)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func schema(t *testing.T, s *Store) int {
	var v int
	if err := s.View(func(tx *Tx) error { v = version(tx.tx); return nil }); err != nil {
		t.Fatal(err)
	}
	return v
}

// Migration 1 makes every bucket the records live in, on an empty database,
// and migration 2 the bucket of running instances.
func TestMigrationsCreateBuckets(t *testing.T) {
	s := open(t)
	if v := schema(t, s); v != len(migrations) {
		t.Fatalf("schema version %d, want %d", v, len(migrations))
	}
	err := s.View(func(tx *Tx) error {
		for _, b := range [][]byte{bucketPools, bucketImages, bucketAliases, bucketInstances, bucketOps, bucketRunning} {
			if tx.tx.Bucket(b) == nil {
				return fmt.Errorf("bucket %s missing", b)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Migrations run in order, once each, and keep the data already there.
func TestMigrationsRunInOrderOnce(t *testing.T) {
	s := open(t)
	if err := s.Update(func(tx *Tx) error { return tx.PutPool(&Pool{Name: "p", ID: "1", Driver: "dir"}) }); err != nil {
		t.Fatal(err)
	}
	var ran []int
	n := len(migrations)
	list := append(append([]migration(nil), migrations...),
		func(*bolt.Tx) error { ran = append(ran, n+1); return nil },
		func(*bolt.Tx) error { ran = append(ran, n+2); return nil })
	for range 2 {
		if err := s.migrate(list); err != nil {
			t.Fatal(err)
		}
	}
	if fmt.Sprint(ran) != fmt.Sprint([]int{n + 1, n + 2}) {
		t.Fatalf("migrations ran %v, want [%d %d]", ran, n+1, n+2)
	}
	if v := schema(t, s); v != n+2 {
		t.Fatalf("schema version %d, want %d", v, n+2)
	}
	if err := s.View(func(tx *Tx) error { _, err := tx.Pool("p"); return err }); err != nil {
		t.Fatal(err)
	}
	// This silo knows one migration fewer: it must refuse the newer database.
	_, err := Open(s.Path(), DefaultTimeout)
	if !errors.Is(err, errkind.Invalid) {
		t.Fatalf("opening a newer database: %v, want an invalid error", err)
	}
}

// A failing migration leaves the database as it was.
func TestFailedMigrationChangesNothing(t *testing.T) {
	s := open(t)
	list := append(append([]migration(nil), migrations...),
		func(tx *bolt.Tx) error { _, _ = tx.CreateBucket([]byte("x")); return errors.New("boom") })
	if err := s.migrate(list); err == nil {
		t.Fatal("a failing migration succeeded")
	}
	if v := schema(t, s); v != len(migrations) {
		t.Fatalf("schema version %d after a failed migration, want %d", v, len(migrations))
	}
}

// Migration 2 adds the bucket of runs to a version 1 database and keeps
// its records.
func TestMigration2AddsRuns(t *testing.T) {
	s := &Store{path: filepath.Join(t.TempDir(), "silo.db"), timeout: DefaultTimeout}
	if err := s.migrate(migrations[:1]); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(func(tx *Tx) error { return tx.PutInstance(&Instance{Name: "a", Pool: "p"}) }); err != nil {
		t.Fatal(err)
	}
	if err := s.migrate(migrations[:2]); err != nil {
		t.Fatal(err)
	}
	if v := schema(t, s); v != 2 {
		t.Fatalf("schema version %d, want 2", v)
	}
	err := s.Update(func(tx *Tx) error {
		if _, err := tx.Instance("a"); err != nil {
			return err
		}
		if r, err := tx.Run("a"); r != nil || err != nil {
			return fmt.Errorf("a run before any: %v, %v", r, err)
		}
		if err := tx.PutRun(&Run{Name: "a", Pid: 7}); err != nil {
			return err
		}
		r, err := tx.Run("a")
		if err != nil || r.Pid != 7 {
			return fmt.Errorf("run read back: %v, %v", r, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestFindImage(t *testing.T) {
	s := open(t)
	err := s.Update(func(tx *Tx) error {
		for _, fp := range []string{"abc123", "abd456", "ffff00"} {
			if err := tx.PutImage(&Image{Fingerprint: fp}); err != nil {
				return err
			}
		}
		return tx.PutImage(&Image{Fingerprint: "ffff00", Aliases: []string{"debian/12"}})
	})
	if err != nil {
		t.Fatal(err)
	}
	for ref, want := range map[string]string{"abc": "abc123", "abd456": "abd456", "debian/12": "ffff00", "f": "ffff00"} {
		var got string
		if err := s.View(func(tx *Tx) error {
			img, err := tx.FindImage(ref)
			if err == nil {
				got = img.Fingerprint
			}
			return err
		}); err != nil || got != want {
			t.Errorf("FindImage(%q) = %q, %v; want %q", ref, got, err, want)
		}
	}
	for ref, kind := range map[string]error{"ab": errkind.Invalid, "zz": errkind.NotFound, "abc1234": errkind.NotFound} {
		err := s.View(func(tx *Tx) error { _, err := tx.FindImage(ref); return err })
		if !errors.Is(err, kind) {
			t.Errorf("FindImage(%q): %v, want %v", ref, err, kind)
		}
	}
}

// Image metadata that records held when the store kept the image
// package's type reads back into the store's own.
func TestImageMetadataRecordsKeepTheirNames(t *testing.T) {
	s := open(t)
	old := `{"fingerprint":"ab12","file":"/s/images/x.img","layout":"unified",
		"metadata":{"architecture":"x86_64","creation_date":1700000000,"expiry_date":1800000000,
			"properties":{"os":"debian"},
			"templates":{"/etc/hostname":{"when":["create","copy"],"create_only":true,"template":"hostname.tpl",
				"properties":{"k":"v"}}}},
		"templates":{"hostname.tpl":"{{ container.name }}"},"size":5,"compression":"xz",
		"created":"2025-01-02T03:04:05Z","aliases":[]}`
	var img *Image
	err := s.Update(func(tx *Tx) error {
		if err := tx.tx.Bucket(bucketImages).Put([]byte("ab12"), []byte(old)); err != nil {
			return err
		}
		var err error
		img, err = tx.Image("ab12")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	want := &ImageMetadata{Architecture: "x86_64", CreationDate: 1700000000, ExpiryDate: 1800000000,
		Properties: map[string]string{"os": "debian"},
		Templates: map[string]*ImageTemplate{"/etc/hostname": {When: []string{"create", "copy"}, CreateOnly: true,
			Template: "hostname.tpl", Properties: map[string]string{"k": "v"}}}}
	if !reflect.DeepEqual(img.Metadata, want) || img.Templates["hostname.tpl"] != "{{ container.name }}" {
		t.Fatalf("read back %+v, templates %v; want %+v", img.Metadata, img.Templates, want)
	}
}

// Concurrent read-modify-write transactions never lose an update.
func TestConcurrentUpdates(t *testing.T) {
	s := open(t)
	if err := s.Update(func(tx *Tx) error { return tx.PutInstance(&Instance{Name: "a"}) }); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			err := s.Update(func(tx *Tx) error {
				inst, err := tx.Instance("a")
				if err != nil {
					return err
				}
				inst.NextSnap++
				return tx.PutInstance(inst)
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	var n int
	_ = s.View(func(tx *Tx) error { inst, err := tx.Instance("a"); n = inst.NextSnap; return err })
	if n != 20 {
		t.Fatalf("counter %d after 20 updates", n)
	}
}

// Migration 3 makes the default profile, and every instance so far
// applies it.
func TestMigration3AddsDefaultProfile(t *testing.T) {
	s := &Store{path: filepath.Join(t.TempDir(), "silo.db"), timeout: DefaultTimeout}
	if err := s.migrate(migrations[:2]); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(func(tx *Tx) error { return tx.PutInstance(&Instance{Name: "a", Pool: "p"}) }); err != nil {
		t.Fatal(err)
	}
	s, err := Open(s.Path(), DefaultTimeout)
	if err != nil {
		t.Fatal(err)
	}
	err = s.View(func(tx *Tx) error {
		p, err := tx.Profile(DefaultProfile)
		if err != nil {
			return err
		}
		if p.Devices["eth0"]["network"] != DefaultNetwork || p.Devices["root"]["path"] != "/" {
			return fmt.Errorf("default profile %+v", p)
		}
		inst, err := tx.Instance("a")
		if err != nil {
			return err
		}
		if len(inst.Profiles) != 1 || inst.Profiles[0] != DefaultProfile {
			return fmt.Errorf("instance a applies %v", inst.Profiles)
		}
		// Its root is on pool p, not the default profile's.
		if inst.Devices["root"]["pool"] != "p" {
			return fmt.Errorf("instance a's devices %v", inst.Devices)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Migration 4 adds the bucket of custom volumes to a version 3 database,
// and its records keep their instances.
func TestMigration4AddsVolumes(t *testing.T) {
	s := &Store{path: filepath.Join(t.TempDir(), "silo.db"), timeout: DefaultTimeout}
	if err := s.migrate(migrations[:3]); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(func(tx *Tx) error { return tx.PutInstance(&Instance{Name: "a", Pool: "p"}) }); err != nil {
		t.Fatal(err)
	}
	if err := s.migrate(migrations[:4]); err != nil {
		t.Fatal(err)
	}
	err := s.Update(func(tx *Tx) error {
		if _, err := tx.Instance("a"); err != nil {
			return err
		}
		return tx.PutCustomVolume(&CustomVolume{Pool: "p", Name: "data", Volume: "v-1"})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Custom volumes are found by pool and name, listed by pool (a pool whose
// name begins another's does not list the other's), and deleted.
func TestCustomVolumes(t *testing.T) {
	s := open(t)
	err := s.Update(func(tx *Tx) error {
		for _, v := range []CustomVolume{
			{Pool: "p", Name: "b", Volume: "v-2", Config: map[string]string{"size": "1GiB"}},
			{Pool: "p", Name: "a", Volume: "v-1", Snapshots: []Snapshot{{Name: "snap0", ID: "s-1", Volume: "v-1"}}, NextSnap: 1},
			{Pool: "p2", Name: "a", Volume: "v-3"},
		} {
			if err := tx.PutCustomVolume(&v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	names := func(pool string) string {
		var out []string
		if err := s.View(func(tx *Tx) error {
			vols, err := tx.CustomVolumes(pool)
			for _, v := range vols {
				out = append(out, v.Pool+"/"+v.Name)
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(out)
	}
	if got := names("p"); got != "[p/a p/b]" {
		t.Fatalf("volumes of p: %s", got)
	}
	if got := names(""); got != "[p/a p/b p2/a]" {
		t.Fatalf("every volume: %s", got)
	}
	if got := names("q"); got != "[]" {
		t.Fatalf("volumes of q: %s", got)
	}
	err = s.Update(func(tx *Tx) error {
		v, err := tx.CustomVolume("p", "a")
		if err != nil {
			return err
		}
		if v.Volume != "v-1" || len(v.Snapshots) != 1 || v.NextSnap != 1 {
			return fmt.Errorf("read back %+v", v)
		}
		if !tx.HasCustomVolume("p2", "a") || tx.HasCustomVolume("p2", "b") {
			return errors.New("HasCustomVolume is wrong")
		}
		return tx.DeleteCustomVolume("p", "a")
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.View(func(tx *Tx) error { _, err := tx.CustomVolume("p", "a"); return err })
	if !errors.Is(err, errkind.NotFound) || err.Error() != `volume "a" not found in pool "p"` {
		t.Fatalf("a deleted volume: %v", err)
	}
	err = s.Update(func(tx *Tx) error { return tx.DeleteCustomVolume("p", "a") })
	if !errors.Is(err, errkind.NotFound) {
		t.Fatalf("deleting it again: %v", err)
	}
}
