package main

import (
	"context"
	"io"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/client"
	"github.com/silo-dev/silo/engine"
	"github.com/silo-dev/silo/errkind"
)

// imageHost is where an image command acts: this host's engine,
// directly, or a remote through its client.
type imageHost interface {
	image(ctx context.Context, ref string) (*api.Image, error)
	pools(ctx context.Context) ([]*api.StoragePool, error)
	remove(ctx context.Context, ref string) error
	addAlias(ctx context.Context, alias, ref string) error
	renameAlias(ctx context.Context, alias, newName string) error
	deleteAlias(ctx context.Context, alias string) error
	export(ctx context.Context, ref string, w io.Writer, compression string) error
	// importImage reads an image file; a split image's rootfs is
	// opts.Rootfs.
	importImage(ctx context.Context, r io.Reader, opts engine.ImportOptions) (*engine.ImportResult, error)
	// publish makes an image of instance name, or of its snapshot snap,
	// and returns its fingerprint and size.
	publish(ctx context.Context, name, snap string, opts engine.PublishOptions) (string, int64, error)
}

// onImageHost runs fn on the host that positional argument 0 names, as
// onHost does.
func onImageHost(min, max int, fn func(c *cli.Context, h imageHost, a []string) error) cli.ActionFunc {
	return onHost(func(e *engine.Engine) imageHost { return localImages{e} }, func(cl *client.Client) imageHost { return remoteImages{cl} }, min, max, fn)
}

type localImages struct{ e *engine.Engine }

func (l localImages) image(ctx context.Context, ref string) (*api.Image, error) {
	return l.e.Image(ctx, ref)
}

func (l localImages) pools(ctx context.Context) ([]*api.StoragePool, error) { return l.e.Pools(ctx) }

func (l localImages) remove(ctx context.Context, ref string) error { return l.e.DeleteImage(ctx, ref) }

func (l localImages) addAlias(ctx context.Context, alias, ref string) error {
	return l.e.AddAlias(ctx, ref, alias)
}

func (l localImages) renameAlias(ctx context.Context, alias, newName string) error {
	return l.e.RenameAlias(ctx, alias, newName)
}

func (l localImages) deleteAlias(ctx context.Context, alias string) error {
	return l.e.DeleteAlias(ctx, alias)
}

func (l localImages) export(ctx context.Context, ref string, w io.Writer, compression string) error {
	return l.e.ExportImage(ctx, ref, w, compression)
}

func (l localImages) importImage(ctx context.Context, r io.Reader, opts engine.ImportOptions) (*engine.ImportResult, error) {
	return l.e.ImportImage(ctx, r, opts)
}

func (l localImages) publish(ctx context.Context, name, snap string, opts engine.PublishOptions) (string, int64, error) {
	res, err := l.e.Publish(ctx, name, snap, opts)
	if err != nil {
		return "", 0, err
	}
	return res.Fingerprint, res.Size, nil
}

type remoteImages struct{ cl *client.Client }

func (r remoteImages) image(ctx context.Context, ref string) (*api.Image, error) {
	return r.cl.Image(ctx, ref)
}

func (r remoteImages) pools(ctx context.Context) ([]*api.StoragePool, error) { return r.cl.Pools(ctx) }

func (r remoteImages) remove(ctx context.Context, ref string) error {
	return awaited(ctx)(r.cl.DeleteImage(ctx, ref))
}

func (r remoteImages) addAlias(ctx context.Context, alias, ref string) error {
	return r.cl.CreateAlias(ctx, alias, ref)
}

func (r remoteImages) renameAlias(ctx context.Context, alias, newName string) error {
	return r.cl.RenameAlias(ctx, alias, newName)
}

func (r remoteImages) deleteAlias(ctx context.Context, alias string) error {
	return r.cl.DeleteAlias(ctx, alias)
}

func (r remoteImages) export(ctx context.Context, ref string, w io.Writer, compression string) error {
	rc, err := r.cl.ExportImage(ctx, ref, compression)
	if err != nil {
		return err
	}
	defer rc.Close()
	_, err = io.Copy(w, rc)
	return err
}

// importImage uploads the image file. The API takes one file, so a
// split image is refused here rather than half sent.
func (r remoteImages) importImage(ctx context.Context, rd io.Reader, opts engine.ImportOptions) (*engine.ImportResult, error) {
	if opts.Rootfs != nil {
		return nil, errkind.Wrap(errkind.Invalid, "a split image (metadata and rootfs) is not served by remotes yet: import it here, then silo image copy it")
	}
	img, existed, err := r.cl.ImportImage(ctx, rd, opts.Fingerprint, opts.Aliases)
	if err != nil {
		return nil, err
	}
	return &engine.ImportResult{Image: img, Existed: existed}, nil
}

func (r remoteImages) publish(ctx context.Context, name, snap string, opts engine.PublishOptions) (string, int64, error) {
	req := api.ImagesPost{Source: api.ImagesPostSource{Type: api.ImageSourceInstance, Name: name},
		Properties: opts.Properties, CompressionAlgorithm: opts.Compression}
	if snap != "" {
		req.Source = api.ImagesPostSource{Type: api.ImageSourceSnapshot, Name: name + "/" + snap}
	}
	for _, a := range opts.Aliases {
		req.Aliases = append(req.Aliases, api.ImageAlias{Name: a})
	}
	return r.cl.Publish(ctx, req)
}

// onImportTarget runs an image import on the host its last argument
// names when that is a host alone (FILE [ROOTFS] h2:, as lxc takes it),
// or else on the default remote. fn gets the files, the host's name taken
// off.
func onImportTarget(fn func(c *cli.Context, h imageHost, a []string) error) cli.ActionFunc {
	return func(c *cli.Context) error {
		n := c.NArg()
		target := n // none: past the end, the default remote
		if n >= 2 && strings.HasSuffix(c.Args().Get(n-1), ":") {
			target = n - 1
		}
		files := func(a []string) []string { return a[:min(len(a), target)] }
		return onRemote(target, func(c *cli.Context, e *engine.Engine) error { return fn(c, localImages{e}, files(positional(c))) },
			func(c *cli.Context, cl *client.Client, a []string) error { return fn(c, remoteImages{cl}, files(a)) })(c)
	}
}
