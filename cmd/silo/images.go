package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/silo-dev/silo/engine"
	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/image"
)

func imageExportCommand() *cli.Command {
	return &cli.Command{Name: "export", Usage: "write an image as an LXD unified image tarball", ArgsUsage: "[REMOTE:]REF",
		Flags: []cli.Flag{outputFlag(), compressionFlag}, Action: onImageHost(1, 1, imageExport)}
}

func imageBuildCommand() *cli.Command {
	return &cli.Command{Name: "build", Usage: "build a bootable image from Debian's mirror (needs mmdebstrap)", ArgsUsage: "debian/RELEASE",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "variant", Value: "minbase", Usage: "mmdebstrap variant: minbase, apt, required, important, standard"},
			&cli.StringSliceFlag{Name: "include", Usage: "more packages, comma-separated (repeatable)"},
			&cli.StringSliceFlag{Name: "alias", Aliases: []string{"a"}, Usage: "alias for the image (repeatable)"},
			&cli.StringFlag{Name: "mirror", EnvVars: []string{"SILO_DEBIAN_MIRROR"}, Usage: "Debian mirror (default: deb.debian.org)"},
		}, Action: withEngine(imageBuild)}
}

func publishCommand() *cli.Command {
	return &cli.Command{Name: "publish", Usage: "make an image of an instance or of one of its snapshots", ArgsUsage: "[REMOTE:]NAME[/SNAP]",
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "alias", Aliases: []string{"a"}, Usage: "alias for the image (repeatable)"},
			compressionFlag,
			&cli.StringSliceFlag{Name: "property", Usage: "KEY=VALUE for the image's metadata (repeatable)"},
		}, Action: onImageHost(1, 1, publish)}
}

func imageExport(c *cli.Context, h imageHost, a []string) error {
	return writeOutput(c.String("output"), "Image "+a[0], func(w io.Writer) error {
		return h.export(c.Context, a[0], w, c.String("compression"))
	})
}

func imageBuild(c *cli.Context, e *engine.Engine) error {
	a, err := args(c, 1, 1)
	if err != nil {
		return err
	}
	var include []string
	for _, s := range c.StringSlice("include") {
		include = append(include, strings.Split(s, ",")...)
	}
	res, err := e.BuildImage(c.Context, a[0], engine.BuildOptions{Aliases: c.StringSlice("alias"),
		DebianOptions: image.DebianOptions{Variant: c.String("variant"), Include: include, Mirror: c.String("mirror"), Log: os.Stderr}})
	if err != nil {
		return err
	}
	fmt.Printf("Image built: %.12s (%s)\n", res.Fingerprint, humanSize(res.Size))
	return nil
}

func publish(c *cli.Context, h imageHost, a []string) error {
	name, snap, _ := strings.Cut(a[0], "/")
	props := map[string]string{}
	for _, kv := range c.StringSlice("property") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return errkind.Wrap(errkind.Invalid, "property %q: use KEY=VALUE", kv)
		}
		props[k] = v
	}
	fp, size, err := h.publish(c.Context, name, snap, engine.PublishOptions{Aliases: c.StringSlice("alias"),
		Compression: c.String("compression"), Properties: props})
	if err != nil {
		return err
	}
	fmt.Printf("Image published: %.12s (%s)\n", fp, humanSize(size))
	return nil
}
