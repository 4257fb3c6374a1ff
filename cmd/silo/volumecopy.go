package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/silo-dev/silo/engine"
	"github.com/silo-dev/silo/errkind"
)

// volumeCopyCommands are the volume commands that copy.
func volumeCopyCommands() []*cli.Command {
	return []*cli.Command{
		{Name: "copy", Aliases: []string{"cp"}, Usage: "copy a volume, with its snapshots, or one of its snapshots, to a new volume on any pool", ArgsUsage: "POOL/NAME[/SNAP] POOL2/NAME2", Flags: []cli.Flag{
			&cli.BoolFlag{Name: "volume-only", Usage: "leave the snapshots out"},
			&cli.BoolFlag{Name: "refresh", Usage: "bring POOL2/NAME2, an earlier copy, up to date: add the snapshots it lacks, keep its own, take the source's head; only differences move"},
			&cli.BoolFlag{Name: "force", Usage: "with --refresh: replace the snapshots of the copy that have diverged from the source's"},
		}, Action: withEngine(volumeCopy)},
	}
}

// volumePath splits POOL/NAME[/SNAP].
func volumePath(s string) (pool, name, snap string, err error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || slices.Contains(parts, "") {
		return "", "", "", errkind.Wrap(errkind.Invalid, "%q is not POOL/NAME or POOL/NAME/SNAP", s)
	}
	if len(parts) == 3 {
		snap = parts[2]
	}
	return parts[0], parts[1], snap, nil
}

func volumeCopy(c *cli.Context, e *engine.Engine) error {
	a, err := args(c, 2, 2)
	if err != nil {
		return err
	}
	pool, name, snap, err := volumePath(a[0])
	if err != nil {
		return err
	}
	dstPool, dstName, dstSnap, err := volumePath(a[1])
	if err == nil && dstSnap != "" {
		err = errkind.Wrap(errkind.Invalid, "%q: a copy is a volume, POOL/NAME, not a snapshot", a[1])
	}
	if err != nil {
		return err
	}
	if c.Bool("refresh") {
		if snap != "" || c.Bool("volume-only") {
			return errkind.Wrap(errkind.Invalid, "volume copy --refresh takes a whole volume and the copy's snapshots: leave out /SNAP and --volume-only")
		}
		res, err := e.RefreshVolume(c.Context, pool, name, dstPool, dstName, c.Bool("force"))
		if err != nil {
			return err
		}
		printRefreshed("Volume", a[1], a[0], res)
		return nil
	}
	v, err := e.CopyVolume(c.Context, pool, name, snap, dstPool, dstName, c.Bool("volume-only"))
	if err != nil {
		return err
	}
	fmt.Printf("Volume %s copied to %s on pool %s, with %d snapshot(s)\n", a[0], v.Name, v.Pool, len(v.Snapshots))
	return nil
}
