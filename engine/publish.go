package engine

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"strings"

	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/image"
	"github.com/silo-dev/silo/internal/archive"
	"github.com/silo-dev/silo/internal/compression"
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
		return archive.WriteTree(ctx, tw, root, "", prefix)
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
	ref, release := storage.Ref{}, func() {}
	if snap != "" {
		s, err := inst.Snapshot(snap)
		if err != nil {
			return nil, err
		}
		ref = storage.Ref{Volume: s.Volume, Snapshot: s.ID}
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
				return archive.WriteTree(ctx, tw, root, "", prefix)
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
	Variant string   // mmdebstrap's variant: minbase when empty
	Include []string // packages beyond the variant's (an init is always added)
	Aliases []string
	Mirror  string // Debian's mirror when empty
	// Log receives the builder's progress.
	Log io.Writer
}

// debianReleases are the releases image build knows.
var debianReleases = map[string]string{"bullseye": "11", "bookworm": "12", "trixie": "13"}

// BuildImage builds a bootable Debian image, named as "debian/RELEASE",
// from Debian's mirror with mmdebstrap, and imports it as a unified image
// with a hostname template. The root filesystem streams from mmdebstrap
// into the compressed image: it is never unpacked on disk here.
func (e *Engine) BuildImage(ctx context.Context, name string, opts BuildOptions) (*ImportResult, error) {
	distro, release, _ := strings.Cut(name, "/")
	version, ok := debianReleases[release]
	if distro != "debian" || !ok {
		return nil, errkind.Wrap(errkind.Invalid, "cannot build %q: give debian/bullseye, debian/bookworm or debian/trixie", name)
	}
	if opts.Variant == "" {
		opts.Variant = "minbase"
	}
	if opts.Mirror == "" {
		opts.Mirror = "http://deb.debian.org/debian"
	}
	builder, err := exec.LookPath("mmdebstrap")
	if err != nil {
		return nil, errkind.Wrap(errkind.Unavailable, "image build needs mmdebstrap: install it (apt-get install mmdebstrap)")
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	fmt.Fprintf(opts.Log, "Building %s (%s) from %s\n", name, opts.Variant, opts.Mirror)
	include := append([]string{"systemd-sysv"}, opts.Include...)
	meta := image.NewMetadata(map[string]string{
		"os": "debian", "release": release, "version": version, "variant": opts.Variant,
		"description": fmt.Sprintf("Debian %s (%s, %s)", release, version, opts.Variant),
	})
	meta.Templates = map[string]*image.Template{
		"/etc/hostname": {When: []string{image.WhenCreate, image.WhenCopy}, Template: "hostname.tpl"},
		"/etc/hosts":    {When: []string{image.WhenCreate, image.WhenCopy}, Template: "hosts.tpl"},
	}
	templates := map[string]string{
		"hostname.tpl": "{{ container.name }}\n",
		"hosts.tpl":    "127.0.0.1\tlocalhost\n127.0.1.1\t{{ container.name }}\n::1\tlocalhost ip6-localhost ip6-loopback\n",
	}
	return e.addImage(ctx, opts.Aliases, false, func(file, _ string) (*image.File, error) {
		cmd := exec.CommandContext(ctx, builder, "--variant="+opts.Variant, "--include="+strings.Join(include, ","),
			"--mode=root", "--format=tar", "--aptopt=APT::Sandbox::User \"root\"", release, "-", opts.Mirror)
		cmd.Stderr = opts.Log
		out, err := cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("build %s: %w", name, err)
		}
		f, werr := writeImage(file, compression.Zstd, meta, templates, func(w io.Writer) error {
			return image.Unified(ctx, w, compression.Zstd, meta, templates, func(tw *tar.Writer, prefix string) error {
				return image.CopyTree(ctx, out, tw, prefix)
			})
		})
		if werr != nil {
			_ = cmd.Process.Kill()
		}
		// When mmdebstrap fails, its stream is cut short: say that it failed.
		if err := cmd.Wait(); err != nil && cmd.ProcessState.Exited() {
			return nil, errkind.Wrap(errkind.Invalid, "build %s: mmdebstrap failed (%v): its output above says why", name, err)
		}
		return f, werr
	})
}
