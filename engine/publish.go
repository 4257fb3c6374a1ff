package engine

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"maps"
	"os"

	"github.com/silo-dev/silo/image"
	"github.com/silo-dev/silo/internal/archive"
	"github.com/silo-dev/silo/internal/compression"
	"github.com/silo-dev/silo/internal/idmap"
	"github.com/silo-dev/silo/internal/store"
	"github.com/silo-dev/silo/storage"
)

// ExportImage writes image ref to w as an LXD unified image, compressed as
// named (zstd when empty). A unified image already so compressed is
// written as it was imported, and so keeps its fingerprint.
func (e *Engine) ExportImage(ctx context.Context, ref string, w io.Writer, comp string) error {
	if comp == "" {
		comp = compression.Zstd
	}
	if err := compression.Check(comp); err != nil {
		return err
	}
	img, err := e.findImage(ref)
	if err != nil {
		return err
	}
	spec := imageSpec(img)
	if spec.Layout == image.LayoutUnified && img.Compression == comp {
		f, err := os.Open(img.File)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(w, f)
		return err
	}
	meta := imageMetadata(img.Metadata)
	if meta == nil {
		meta = image.NewMetadata(nil)
		meta.CreationDate = img.Created.Unix()
	}
	return image.Unified(ctx, w, comp, meta, img.Templates, func(tw *tar.Writer, prefix string) error {
		if spec.RootfsFormat != image.FormatSquashfs {
			return image.Retar(ctx, spec, tw, prefix)
		}
		// A squashfs is read from the image's base volume on a pool.
		root, release, err := e.imageTree(ctx, img)
		if err != nil {
			return err
		}
		defer release()
		return archive.WriteTree(ctx, tw, root, "", prefix, idmap.Shift{}) // a base is never shifted
	})
}

// imageTree gives the root of img's base volume, on a pool that has one or
// else on the default pool.
func (e *Engine) imageTree(ctx context.Context, img *store.Image) (string, func() error, error) {
	pool := ""
	for p := range img.Bases {
		pool = p
		break
	}
	pool, err := e.pool(ctx, pool)
	if err != nil {
		return "", nil, err
	}
	vol, err := e.base(ctx, pool, img.Fingerprint)
	if err != nil {
		return "", nil, err
	}
	d, _, err := e.driver(ctx, pool)
	if err != nil {
		return "", nil, err
	}
	return openRef(ctx, d, storage.Ref{Volume: vol})
}

// PublishOptions tune Publish.
type PublishOptions struct {
	Aliases     []string
	Compression string            // zstd when empty
	Properties  map[string]string // added to the image's metadata
}

// Publish makes an image of instance name, or of its snapshot snap. A
// running instance is read from a snapshot taken for the purpose.
func (e *Engine) Publish(ctx context.Context, name, snap string, opts PublishOptions) (*ImportResult, error) {
	if opts.Compression == "" {
		opts.Compression = compression.Zstd
	}
	if err := compression.Check(opts.Compression); err != nil {
		return nil, err
	}
	lock, err := e.instanceLock(name)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	inst, d, err := e.instanceDriver(ctx, name)
	if err != nil {
		return nil, err
	}
	ref, release, shift := storage.Ref{}, func() {}, inst.Shift
	if snap != "" {
		s, err := inst.Snapshot(snap)
		if err != nil {
			return nil, err
		}
		ref, shift = storage.Ref{Volume: s.Volume, Snapshot: s.ID}, s.Shift
	} else if ref, release, err = e.frozenHead(ctx, inst, d, true); err != nil {
		return nil, err
	}
	defer release()
	root, closeTree, err := openRef(ctx, d, ref)
	if err != nil {
		return nil, err
	}
	defer closeTree()
	meta := image.NewMetadata(map[string]string{})
	if from := imageMetadata(inst.Metadata); from != nil {
		meta.Architecture, meta.Templates = from.Architecture, from.Templates
		maps.Copy(meta.Properties, from.Properties)
	}
	maps.Copy(meta.Properties, opts.Properties)
	if meta.Properties["description"] == "" {
		what := name
		if snap != "" {
			what += "/" + snap
		}
		meta.Properties["description"] = "published from " + what
	}
	return e.addImage(ctx, opts.Aliases, false, func(file, _ string) (*image.File, error) {
		return writeImage(file, opts.Compression, meta, inst.Templates, func(w io.Writer) error {
			return image.Unified(ctx, w, opts.Compression, meta, inst.Templates, func(tw *tar.Writer, prefix string) error {
				return archive.WriteTree(ctx, tw, root, "", prefix, inside(shift))
			})
		})
	})
}

// writeImage writes a unified image to the new file path through write,
// fingerprinting it on the way.
func writeImage(path, comp string, meta *image.Metadata, templates map[string]string, write func(io.Writer) error) (*image.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	bw := bufio.NewWriterSize(io.MultiWriter(f, h), 1<<20)
	if err := write(bw); err != nil {
		return nil, err
	}
	if err := bw.Flush(); err != nil {
		return nil, err
	}
	if err := f.Sync(); err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	return &image.File{Fingerprint: hex.EncodeToString(h.Sum(nil)), Size: st.Size(), Compression: comp,
		Layout: image.LayoutUnified, Metadata: meta, Templates: templates}, nil
}

// BuildOptions tune BuildImage.
type BuildOptions struct {
	image.DebianOptions
	Aliases []string
}

// BuildImage builds a bootable Debian image, named as "debian/RELEASE",
// from Debian's mirror with mmdebstrap, and imports it as a unified image
// with a hostname template. The root filesystem streams from mmdebstrap
// into the compressed image: it is never unpacked on disk here.
func (e *Engine) BuildImage(ctx context.Context, name string, opts BuildOptions) (*ImportResult, error) {
	b, err := image.NewDebianBuild(name, opts.DebianOptions)
	if err != nil {
		return nil, err
	}
	meta, templates := b.Metadata()
	return e.addImage(ctx, opts.Aliases, false, func(file, _ string) (*image.File, error) {
		return writeImage(file, compression.Zstd, meta, templates, func(w io.Writer) error {
			return image.Unified(ctx, w, compression.Zstd, meta, templates, b.Rootfs(ctx))
		})
	})
}
