// Backups that the host keeps of an instance, as LXD's instance backups:
// a backup stream written into the state directory's backups directory,
// for a client to download later, deleted with its instance or when it
// expires.

package engine

import (
	"bufio"
	"context"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/events"
	"github.com/silo-dev/silo/internal/compression"
	"github.com/silo-dev/silo/internal/fsutil"
	"github.com/silo-dev/silo/internal/store"
)

// BackupOptions are the choices of a new backup (LXD's
// InstanceBackupsPost).
type BackupOptions struct {
	// Name is the backup's; "" names it backup0, backup1... the first
	// that is free.
	Name string
	// ExpiresAt is when the background pass deletes it; zero for never.
	ExpiresAt    time.Time
	InstanceOnly bool
	Optimized    bool
	Compression  string // zstd when empty
}

// backupPath is the file of the backup with id.
func (e *Engine) backupPath(id string) string { return e.path("backups", id) }

// CheckBackup checks a new backup of instance name before it is made,
// and names it when opts.Name is empty: a server answers what is wrong at
// once, and the operation that makes it knows its name.
func (e *Engine) CheckBackup(name string, opts *BackupOptions) error {
	return e.store.View(func(tx *store.Tx) error {
		inst, err := tx.Instance(name)
		if err != nil {
			return err
		}
		return prepareBackup(tx, inst, opts)
	})
}

// prepareBackup checks opts for a new backup of inst, and names it.
func prepareBackup(tx *store.Tx, inst *store.Instance, opts *BackupOptions) error {
	if opts.Compression == "" {
		opts.Compression = compression.Zstd
	}
	if err := compression.Check(opts.Compression); err != nil {
		return err
	}
	taken := func(b string) bool {
		if _, err := inst.Backup(b); err == nil {
			return true
		}
		reserved, err := tx.Reserved(store.Reservation("backup", inst.Name, b))
		return reserved || err != nil
	}
	if opts.Name == "" {
		for i := 0; opts.Name == "" || taken(opts.Name); i++ {
			opts.Name = "backup" + strconv.Itoa(i)
		}
		return nil
	}
	if err := checkName("backup", opts.Name); err != nil {
		return err
	}
	if taken(opts.Name) {
		return errkind.Wrap(errkind.AlreadyExists, "backup %q of instance %q already exists", opts.Name, inst.Name)
	}
	return nil
}

// CreateBackup writes a backup of instance name, as Export streams it,
// into the backups directory. The file is written under a temporary
// name and renamed once whole, and both names are in the operation's
// undo list, recorded before the first byte: a command killed at any
// point leaves no file that the next start does not remove. It holds
// the instance's lock from its record to its commit, as the changes
// whose undo puts the instance's record back do.
func (e *Engine) CreateBackup(ctx context.Context, name string, opts BackupOptions) (*store.Backup, error) {
	lock, err := e.instanceLock(name)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	b := &store.Backup{ID: newID("b-"), Expires: opts.ExpiresAt.UTC(), InstanceOnly: opts.InstanceOnly, Optimized: opts.Optimized}
	path := e.backupPath(b.ID)
	tmp := path + ".part"
	o, err := e.journal.Begin("backup", name, func(tx *store.Tx, rec *store.Op) error {
		inst, err := tx.Instance(name)
		if err != nil {
			return err
		}
		if err := prepareBackup(tx, inst, &opts); err != nil {
			return err
		}
		b.Name, b.Compression = opts.Name, opts.Compression
		rec.Reserved = []string{store.Reservation("backup", name, b.Name)}
		rec.Undo.Files = []string{tmp, path}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if b.Size, err = e.writeBackup(ctx, name, tmp, opts); err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = fsutil.SyncDir(e.path("backups"))
	}
	if err != nil {
		return nil, o.Fail(ctx, fmt.Errorf("backup %s of %s: %w", b.Name, name, err))
	}
	o.Step("written")
	b.Created = time.Now().UTC()
	return b, o.Commit(ctx, func(tx *store.Tx) error {
		inst, err := tx.Instance(name)
		if err != nil {
			return err
		}
		inst.Backups = append(inst.Backups, *b)
		if err := tx.PutInstance(inst); err != nil {
			return err
		}
		return backupEvent(tx, api.ActionInstanceBackupCreated, name, b.Name, nil)
	})
}

// writeBackup exports instance name into the file path, synced to disk,
// and returns its size.
func (e *Engine) writeBackup(ctx context.Context, name, path string, opts BackupOptions) (int64, error) {
	if err := os.MkdirAll(e.path("backups"), 0o700); err != nil {
		return 0, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	err = e.export(ctx, name, w, ExportOptions{InstanceOnly: opts.InstanceOnly, Optimized: opts.Optimized, Compression: opts.Compression})
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		return 0, err
	}
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return st.Size(), f.Close()
}

// backupEvent logs action on backup b of instance name.
func backupEvent(tx *store.Tx, action, name, b string, context map[string]any) error {
	return events.Record(tx, action, api.Path("instances", name)+"/backups/"+url.PathEscape(b), context)
}

// Backups lists the backups of instance name, oldest first.
func (e *Engine) Backups(ctx context.Context, name string) ([]api.InstanceBackup, error) {
	inst, err := e.instance(name)
	if err != nil {
		return nil, err
	}
	out := []api.InstanceBackup{}
	for _, b := range inst.Backups {
		out = append(out, apiBackup(&b))
	}
	return out, nil
}

func apiBackup(b *store.Backup) api.InstanceBackup {
	return api.InstanceBackup{Name: b.Name, CreatedAt: b.Created, ExpiresAt: b.Expires, InstanceOnly: b.InstanceOnly,
		OptimizedStorage: b.Optimized, CompressionAlgorithm: b.Compression, Size: b.Size}
}

// Backup describes backup b of instance name.
func (e *Engine) Backup(ctx context.Context, name, b string) (*api.InstanceBackup, error) {
	inst, err := e.instance(name)
	if err != nil {
		return nil, err
	}
	rec, err := inst.Backup(b)
	if err != nil {
		return nil, err
	}
	out := apiBackup(rec)
	return &out, nil
}

// OpenBackup opens the file of backup b of instance name, for a client
// to download; the caller closes it. A deletion meanwhile does not cut
// the download short: the open file stays whole until it is closed.
func (e *Engine) OpenBackup(ctx context.Context, name, b string) (*os.File, *api.InstanceBackup, error) {
	var rec *store.Backup
	err := e.store.View(func(tx *store.Tx) error {
		inst, err := tx.Instance(name)
		if err == nil {
			rec, err = inst.Backup(b)
		}
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	f, err := os.Open(e.backupPath(rec.ID))
	if err != nil {
		return nil, nil, fmt.Errorf("backup %s of %s: %w", b, name, errkind.FromErrno(err))
	}
	out := apiBackup(rec)
	return f, &out, nil
}

// RenameBackup gives backup b of instance name the name to; its file
// stays as it is.
func (e *Engine) RenameBackup(ctx context.Context, name, b, to string) error {
	if err := checkName("backup", to); err != nil {
		return err
	}
	lock, err := e.instanceLock(name)
	if err != nil {
		return err
	}
	defer lock.Close()
	return e.store.Update(func(tx *store.Tx) error {
		inst, err := tx.Instance(name)
		if err != nil {
			return err
		}
		rec, err := inst.Backup(b)
		if err != nil {
			return err
		}
		if err := prepareBackup(tx, inst, &BackupOptions{Name: to, Compression: rec.Compression}); err != nil {
			return err
		}
		rec.Name = to
		if err := tx.PutInstance(inst); err != nil {
			return err
		}
		return backupEvent(tx, api.ActionInstanceBackupRenamed, name, to, map[string]any{"old_name": b})
	})
}

// DeleteBackup deletes backup b of instance name, its record and then
// its file.
func (e *Engine) DeleteBackup(ctx context.Context, name, b string) error {
	lock, err := e.instanceLock(name)
	if err != nil {
		return err
	}
	defer lock.Close()
	return e.journal.Do(ctx, "backup-delete", name+"/"+b, func(tx *store.Tx, rec *store.Op) error {
		inst, err := tx.Instance(name)
		if err != nil {
			return err
		}
		gone, err := inst.Backup(b)
		if err != nil {
			return err
		}
		rec.Retire.Files = []string{e.backupPath(gone.ID)}
		inst.Backups = slices.DeleteFunc(inst.Backups, func(k store.Backup) bool { return k.Name == b })
		if err := tx.PutInstance(inst); err != nil {
			return err
		}
		return backupEvent(tx, api.ActionInstanceBackupDeleted, name, b, nil)
	})
}

// backupFiles are the files of inst's backups, for its deletion to
// retire.
func (e *Engine) backupFiles(inst *store.Instance) []string {
	var out []string
	for _, b := range inst.Backups {
		out = append(out, e.backupPath(b.ID))
	}
	return out
}
