package engine

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/events"
	"github.com/silo-dev/silo/image"
	"github.com/silo-dev/silo/internal/fsutil"
	"github.com/silo-dev/silo/internal/store"
	"github.com/silo-dev/silo/storage"
)

// ImportResult says what an import did.
type ImportResult struct {
	*api.Image
	// Existed is set when the same file was already imported: nothing changed.
	Existed bool
}

// ImportOptions tune ImportImage.
type ImportOptions struct {
	Aliases []string
	// Rootfs is the second file of a split image, when not nil.
	Rootfs io.Reader
	// Fingerprint, when set, is what the image's must be.
	Fingerprint string
}

// ImportImage reads an image from r (and opts.Rootfs) into the image store.
// The files are checked as they are read; a bad image leaves nothing.
func (e *Engine) ImportImage(ctx context.Context, r io.Reader, opts ImportOptions) (*ImportResult, error) {
	return e.addImage(ctx, opts.Aliases, opts.Rootfs != nil, func(file, rootfs string) (*image.File, error) {
		var saved *image.File
		var err error
		if opts.Rootfs != nil {
			saved, err = image.SaveSplit(ctx, r, opts.Rootfs, file, rootfs)
		} else {
			saved, err = image.Save(ctx, r, file)
		}
		if err == nil && opts.Fingerprint != "" && opts.Fingerprint != saved.Fingerprint {
			err = errkind.Wrap(errkind.Invalid, "fingerprint mismatch: the image's is %s, not %s", saved.Fingerprint, opts.Fingerprint)
		}
		if err != nil {
			return nil, fmt.Errorf("import image: %w", err)
		}
		return saved, nil
	})
}

// addImage records the image that produce writes into the image store, at
// file (and rootfs, for a split image), under aliases. The intent is
// recorded first: a failed or interrupted produce leaves no file behind.
// An image already there is kept, and the new copy dropped.
func (e *Engine) addImage(ctx context.Context, aliases []string, split bool, produce func(file, rootfs string) (*image.File, error)) (*ImportResult, error) {
	for _, a := range aliases {
		if err := checkName("alias", a); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(e.path("images"), 0o700); err != nil {
		return nil, err
	}
	id := newID("")
	file, rootfs := e.path("images", id+".img"), ""
	if split {
		rootfs = e.path("images", id+".rootfs")
	}
	o, err := e.journal.Begin("image-import", "image", func(tx *store.Tx, rec *store.Op) error {
		for _, a := range aliases {
			if err := aliasFree(tx, a); err != nil {
				return err
			}
			rec.Reserved = append(rec.Reserved, store.Reservation("alias", a))
		}
		rec.Undo.Files = []string{file, rootfs}
		return nil
	})
	if err != nil {
		return nil, err
	}
	saved, err := produce(file, rootfs)
	if err != nil {
		return nil, o.Fail(ctx, err)
	}
	o.Step("saved")
	var img *store.Image
	existed := false
	err = o.Commit(ctx, func(tx *store.Tx) error {
		if img, err = tx.Image(saved.Fingerprint); err == nil {
			existed = true
			o.Rec.Retire.Files = []string{file, rootfs}
			return nil
		}
		img = &store.Image{
			Fingerprint: saved.Fingerprint, File: file, Rootfs: rootfs, Layout: saved.Layout,
			RootfsFormat: saved.RootfsFormat, Metadata: metadataRecord(saved.Metadata), Templates: saved.Templates,
			Size: saved.Size, Compression: saved.Compression, Created: time.Now().UTC(), Aliases: aliases,
		}
		if err := tx.PutImage(img); err != nil {
			return err
		}
		return objectEvent(tx, api.ActionImageCreated, "images", img.Fingerprint)
	})
	if err != nil {
		return nil, err
	}
	if existed && len(aliases) > 0 {
		for _, a := range aliases {
			if err := e.AddAlias(ctx, img.Fingerprint, a); err != nil {
				return nil, err
			}
		}
		if img, err = e.findImage(img.Fingerprint); err != nil {
			return nil, err
		}
	}
	return &ImportResult{Image: apiImage(img), Existed: existed}, nil
}

func aliasFree(tx *store.Tx, alias string) error {
	if fp := tx.AliasTarget(alias); fp != "" {
		return errkind.Wrap(errkind.AlreadyExists, "alias %q already names image %.12s", alias, fp)
	}
	return nil
}

// aliasGivable refuses an alias that names an image, or that an import
// under way is to give.
func aliasGivable(tx *store.Tx, alias string) error {
	if err := aliasFree(tx, alias); err != nil {
		return err
	}
	if taken, err := tx.Reserved(store.Reservation("alias", alias)); err != nil || taken {
		return errkindOr(err, errkind.Wrap(errkind.Busy, "alias %q is being given by another silo command", alias))
	}
	return nil
}

// Images lists the images, oldest first.
func (e *Engine) Images(ctx context.Context) ([]*api.Image, error) {
	var imgs []*store.Image
	if err := e.store.View(func(tx *store.Tx) (err error) { imgs, err = tx.Images(); return err }); err != nil {
		return nil, err
	}
	sort.Slice(imgs, func(i, j int) bool { return imgs[i].Created.Before(imgs[j].Created) })
	out := []*api.Image{}
	for _, img := range imgs {
		out = append(out, apiImage(img))
	}
	return out, nil
}

// Image finds an image by alias, fingerprint or unique prefix of one.
func (e *Engine) Image(ctx context.Context, ref string) (*api.Image, error) {
	img, err := e.findImage(ref)
	if err != nil {
		return nil, err
	}
	return apiImage(img), nil
}

func (e *Engine) findImage(ref string) (*store.Image, error) {
	var img *store.Image
	err := e.store.View(func(tx *store.Tx) (err error) { img, err = tx.FindImage(ref); return err })
	return img, err
}

// DeleteImage deletes an image that no instance uses, with its base volumes.
func (e *Engine) DeleteImage(ctx context.Context, ref string) error {
	return e.journal.Do(ctx, "image-delete", ref, func(tx *store.Tx, rec *store.Op) error {
		img, err := tx.FindImage(ref)
		if err != nil {
			return err
		}
		insts, err := tx.Instances()
		if err != nil {
			return err
		}
		var users []string
		for _, i := range insts {
			if i.Image == img.Fingerprint {
				users = append(users, i.Name)
			}
		}
		if len(users) > 0 {
			return errkind.Wrap(errkind.Busy, "image %.12s is in use by %d instance(s): %v", img.Fingerprint, len(users), users)
		}
		for pool, vol := range img.Bases {
			rec.Retire.Volumes = append(rec.Retire.Volumes, store.VolumeRef{Pool: pool, Volume: vol})
		}
		// After the bases (the list is removed from its end): their clones.
		for pool, shifted := range img.Shifted {
			for _, vol := range shifted {
				rec.Retire.Volumes = append(rec.Retire.Volumes, store.VolumeRef{Pool: pool, Volume: vol})
			}
		}
		rec.Retire.Files = []string{img.File, img.Rootfs}
		if err := tx.DeleteImage(img); err != nil {
			return err
		}
		return objectEvent(tx, api.ActionImageDeleted, "images", img.Fingerprint)
	})
}

// AddAlias gives the image ref one more alias.
func (e *Engine) AddAlias(ctx context.Context, ref, alias string) error {
	if err := checkName("alias", alias); err != nil {
		return err
	}
	return e.store.Update(func(tx *store.Tx) error {
		img, err := tx.FindImage(ref)
		if err != nil {
			return err
		}
		if err := aliasGivable(tx, alias); err != nil {
			return err
		}
		img.Aliases = append(img.Aliases, alias)
		if err := tx.PutImage(img); err != nil {
			return err
		}
		return objectEvent(tx, api.ActionImageAliasCreated, "images/aliases", alias)
	})
}

// DeleteAlias removes an alias; the image stays.
func (e *Engine) DeleteAlias(ctx context.Context, alias string) error {
	return e.store.Update(func(tx *store.Tx) error {
		if err := tx.DeleteAlias(alias); err != nil {
			return err
		}
		return objectEvent(tx, api.ActionImageAliasDeleted, "images/aliases", alias)
	})
}

// RenameAlias gives the image that alias names the name newName instead.
func (e *Engine) RenameAlias(ctx context.Context, alias, newName string) error {
	if err := checkName("alias", newName); err != nil {
		return err
	}
	return e.store.Update(func(tx *store.Tx) error {
		fp := tx.AliasTarget(alias)
		if fp == "" {
			return errkind.Wrap(errkind.NotFound, "alias %q not found", alias)
		}
		if err := aliasGivable(tx, newName); err != nil {
			return err
		}
		if err := tx.DeleteAlias(alias); err != nil {
			return err
		}
		img, err := tx.Image(fp)
		if err != nil {
			return err
		}
		img.Aliases = append(img.Aliases, newName)
		if err := tx.PutImage(img); err != nil {
			return err
		}
		return events.Record(tx, api.ActionImageAliasRenamed, api.Path("images/aliases", newName), map[string]any{"old_name": alias})
	})
}

// Aliases lists the aliases with the images they name, by name.
func (e *Engine) Aliases(ctx context.Context) ([]api.ImageAliasesEntry, error) {
	imgs, err := e.Images(ctx)
	if err != nil {
		return nil, err
	}
	out := []api.ImageAliasesEntry{}
	for _, img := range imgs {
		for _, a := range img.Aliases {
			out = append(out, api.ImageAliasesEntry{Name: a.Name, Target: img.Fingerprint, Type: img.Type})
		}
	}
	slices.SortFunc(out, func(a, b api.ImageAliasesEntry) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Alias describes one alias.
func (e *Engine) Alias(ctx context.Context, name string) (*api.ImageAliasesEntry, error) {
	var fp string
	if err := e.store.View(func(tx *store.Tx) error { fp = tx.AliasTarget(name); return nil }); err != nil {
		return nil, err
	}
	if fp == "" {
		return nil, errkind.Wrap(errkind.NotFound, "alias %q not found", name)
	}
	return &api.ImageAliasesEntry{Name: name, Target: fp, Type: api.TypeContainer}, nil
}

func errkindOr(err, other error) error {
	if err != nil {
		return err
	}
	return other
}

// base returns the ID of the image's base volume on pool, making it if
// it is not there yet. One command makes it while the others wait.
func (e *Engine) base(ctx context.Context, pool, fp string) (string, error) {
	find := func() (vol string, spec image.Spec, err error) {
		err = e.store.View(func(tx *store.Tx) error {
			img, err := tx.Image(fp)
			if err != nil {
				return err
			}
			vol, spec = img.Bases[pool], imageSpec(img)
			return nil
		})
		return
	}
	lock, err := fsutil.LockFile(e.path("locks", "base-"+fp+".lock"), syscall.LOCK_EX)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	vol, spec, err := find()
	if err != nil || vol != "" {
		return vol, err
	}
	d, _, err := e.driver(ctx, pool)
	if err != nil {
		return "", err
	}
	vol = newID("img-")
	o, err := e.journal.Begin("image-unpack", fp, func(tx *store.Tx, rec *store.Op) error {
		rec.Undo.Volumes = []store.VolumeRef{{Pool: pool, Volume: vol}}
		return nil
	})
	if err != nil {
		return "", err
	}
	if err := storage.CreateImageVolume(ctx, d, vol, func(root string) error {
		return image.Unpack(ctx, spec, root)
	}); err != nil {
		return "", o.Fail(ctx, fmt.Errorf("unpack image %.12s on pool %s: %w", fp, pool, err))
	}
	o.Step("unpacked")
	return vol, o.Commit(ctx, func(tx *store.Tx) error {
		img, err := tx.Image(fp)
		if err != nil {
			return err
		}
		if img.Bases == nil {
			img.Bases = map[string]string{}
		}
		img.Bases[pool] = vol
		return tx.PutImage(img)
	})
}
