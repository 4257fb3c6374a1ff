package main

import (
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/engine"
	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/remote"
)

func imageCopyCommand() *cli.Command {
	return &cli.Command{Name: "copy", Aliases: []string{"cp"}, Usage: "copy an image to another host, or from one, as an LXD unified image stream",
		ArgsUsage: "[REMOTE:]REF REMOTE:", Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "alias", Usage: "alias for the copy (repeatable)"},
			&cli.BoolFlag{Name: "copy-aliases", Usage: "give the copy the source's aliases too"},
		}, Action: imageCopy}
}

// imageCopy streams an image from one host to another: the source exports
// it as it would to a file, the target imports it as it would from one,
// so a copy cut short leaves nothing on the target.
func imageCopy(c *cli.Context) error {
	a, err := args(c, 2, 2)
	if err != nil {
		return err
	}
	cfg, err := loadRemotes()
	if err != nil {
		return err
	}
	src, dst := cfg.Parse(a[0]), cfg.Parse(a[1])
	switch {
	case dst.Name != "":
		return errkind.Wrap(errkind.Invalid, "image copy: the target is a host, REMOTE: (not %s)", a[1])
	case src.Remote == dst.Remote:
		return errkind.Wrap(errkind.Invalid, "image copy: %s is on %s already", src.Name, src.Remote)
	}
	var e *engine.Engine // this host's, when it is one of the two
	if src.IsLocal() || dst.IsLocal() {
		if e, err = engine.Open(c.Context, c.String("state-dir")); err != nil {
			return err
		}
		defer e.Close()
	}
	img, fp, err := transferImage(c, cfg, e, src, dst, c.StringSlice("alias"), c.Bool("copy-aliases"))
	if err != nil {
		return err
	}
	fmt.Printf("Image %.12s copied to %s: %.12s\n", img.Fingerprint, dst.Remote, fp)
	return nil
}

// transferImage copies image src.Name to the host dst names, with aliases
// (and the source's, with copyAliases), and returns the source image and
// the copy's fingerprint. e is this host's engine, if it is one of the two.
func transferImage(c *cli.Context, cfg *remote.Config, e *engine.Engine, src, dst remote.Ref, aliases []string, copyAliases bool) (*api.Image, string, error) {
	img, stream, err := exportFrom(c, cfg, e, src)
	if err != nil {
		return nil, "", err
	}
	defer stream.Close()
	if copyAliases {
		for _, al := range img.Aliases {
			aliases = append(aliases, al.Name)
		}
	}
	if dst.IsLocal() {
		res, err := e.ImportImage(c.Context, stream, engine.ImportOptions{Aliases: aliases})
		if err != nil {
			return nil, "", err
		}
		return img, res.Fingerprint, nil
	}
	cl, err := cfg.Client(dst.Remote)
	if err != nil {
		return nil, "", err
	}
	got, _, err := cl.ImportImage(c.Context, stream, "", aliases)
	if err != nil {
		return nil, "", err
	}
	return img, got.Fingerprint, nil
}

// exportFrom starts the stream of image src.Name from its host.
func exportFrom(c *cli.Context, cfg *remote.Config, e *engine.Engine, src remote.Ref) (*api.Image, io.ReadCloser, error) {
	if !src.IsLocal() {
		cl, err := cfg.Client(src.Remote)
		if err != nil {
			return nil, nil, err
		}
		img, err := cl.Image(c.Context, src.Name)
		if err != nil {
			return nil, nil, err
		}
		rc, err := cl.ExportImage(c.Context, img.Fingerprint, "")
		return img, rc, err
	}
	img, err := e.Image(c.Context, src.Name)
	if err != nil {
		return nil, nil, err
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(e.ExportImage(c.Context, img.Fingerprint, pw, "")) }()
	return img, pr, nil
}
