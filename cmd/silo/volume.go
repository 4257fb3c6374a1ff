package main

import (
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/client"
	"github.com/silo-dev/silo/engine"
	"github.com/silo-dev/silo/internal/progress"
)

// volumeCommand is `silo volume`: custom volumes and their snapshots.
func volumeCommand() *cli.Command {
	return &cli.Command{
		Name:  "volume",
		Usage: "manage custom volumes: data apart from any instance's root",
		Subcommands: append([]*cli.Command{
			{Name: "create", Usage: "create an empty volume (size=10GiB caps it)", ArgsUsage: "POOL NAME [KEY=VALUE...]", Action: onVolumes(2, -1, volumeCreate)},
			{Name: "list", Aliases: []string{"ls"}, Usage: "list volumes, of every pool or of one", ArgsUsage: "[REMOTE:][POOL]", Flags: []cli.Flag{formatFlag}, Action: onVolumes(0, 1, volumeList)},
			{Name: "info", Usage: "show a volume: what it holds, its cap, snapshots and users", ArgsUsage: "POOL NAME", Flags: []cli.Flag{formatFlag}, Action: onVolumes(2, 2, volumeInfo)},
			{Name: "get", Usage: "print a config key of a volume", ArgsUsage: "POOL NAME KEY", Action: onVolumes(3, 3, volumeGet)},
			{Name: "set", Usage: "set config keys (size= changes the cap at once)", ArgsUsage: "POOL NAME KEY=VALUE...", Action: onVolumes(3, -1, volumeSet)},
			{Name: "unset", Usage: "remove config keys", ArgsUsage: "POOL NAME KEY...", Action: onVolumes(3, -1, volumeUnset)},
			{Name: "rename", Aliases: []string{"mv"}, Usage: "rename a volume nothing attaches", ArgsUsage: "POOL OLD NEW", Action: onVolumes(3, 3, volumeRename)},
			{Name: "delete", Aliases: []string{"rm"}, Usage: "delete a volume nothing attaches, with its snapshots", ArgsUsage: "POOL NAME", Action: onVolumes(2, 2, volumeDelete)},
			{Name: "export", Usage: "write a volume, with its snapshots, as a backup file (- for stdout)", ArgsUsage: "[REMOTE:]POOL NAME FILE", Flags: []cli.Flag{
				compressionFlag,
				&cli.BoolFlag{Name: "volume-only", Usage: "leave the snapshots out"},
				&cli.BoolFlag{Name: "optimized", Usage: "the storage driver's own streams: faster, but only a pool of the same driver can import them"},
			}, Action: onVolumes(3, 3, volumeExport)},
			{Name: "import", Usage: "make a volume from a backup file (- for stdin)", ArgsUsage: "[REMOTE:]POOL NAME FILE", Action: onVolumes(3, 3, volumeImport)},
			{
				Name:  "snapshot",
				Usage: "manage volume snapshots",
				Subcommands: []*cli.Command{
					{Name: "create", Usage: "snapshot a volume (default names: by snapshots.pattern, else snap0, snap1...)", ArgsUsage: "POOL NAME [SNAP]", Flags: snapshotFlags, Action: onVolumes(2, 3, volumeSnapshotCreate)},
					{Name: "list", Aliases: []string{"ls"}, Usage: "list a volume's snapshots", ArgsUsage: "POOL NAME", Flags: []cli.Flag{formatFlag}, Action: onVolumes(2, 2, volumeSnapshotList)},
					{Name: "restore", Usage: "bring a volume back to any of its snapshots, keeping the others", ArgsUsage: "POOL NAME SNAP", Action: onVolumes(3, 3, volumeSnapshotRestore)},
					{Name: "delete", Aliases: []string{"rm"}, Usage: "delete a snapshot", ArgsUsage: "POOL NAME SNAP", Action: onVolumes(3, 3, volumeSnapshotDelete)},
				},
			},
		}, volumeCopyCommands()...),
	}
}

// onVolumes runs a volume command on this host's engine, or through the
// remote that its pool argument names (h2:POOL, as lxc takes it; h2: for
// volume list), with between min and max positional arguments (max -1:
// any number).
func onVolumes(min, max int, fn func(c *cli.Context, h volumeHost, a []string) error) cli.ActionFunc {
	return onHost(func(e *engine.Engine) volumeHost { return localVolumes{e} }, func(cl *client.Client) volumeHost { return remoteVolumes{cl} }, min, max, fn)
}

func volumeCreate(c *cli.Context, h volumeHost, a []string) error {
	cfg, err := keyValues(a[2:])
	if err != nil {
		return err
	}
	if err := h.create(c.Context, a[0], a[1], cfg); err != nil {
		return err
	}
	fmt.Printf("Volume %s created on pool %s\n", a[1], a[0])
	return nil
}

// volumeSize is what v holds, and of how much when it has a cap.
func volumeSize(v *api.StorageVolume) string {
	if v.State == nil {
		return "-"
	}
	if u := v.State.Usage; u.Total > 0 {
		return humanSize(u.Used) + " of " + humanSize(u.Total)
	}
	return humanSize(v.State.Usage.Used)
}

func volumeList(c *cli.Context, h volumeHost, a []string) error {
	vols, err := h.volumes(c.Context, a[0])
	if err != nil {
		return err
	}
	var rows [][]string
	for _, v := range vols {
		rows = append(rows, []string{v.Pool, v.Name, volumeSize(v), strconv.Itoa(len(v.Snapshots)), strconv.Itoa(len(v.UsedBy))})
	}
	return output(c, vols, []string{"POOL", "NAME", "USED", "SNAPSHOTS", "USED BY"}, rows)
}

func volumeInfo(c *cli.Context, h volumeHost, a []string) error {
	v, err := h.volume(c.Context, a[0], a[1])
	if err != nil {
		return err
	}
	var snaps []string
	for _, s := range v.Snapshots {
		snaps = append(snaps, snapshotText(s.Name, s.ExpiresAt))
	}
	var cfg []string
	for _, k := range slices.Sorted(maps.Keys(v.Config)) {
		cfg = append(cfg, k+"="+v.Config[k])
	}
	return output(c, v, []string{"Name:", v.Name}, fields(
		"Pool", v.Pool, "Description", orDash(v.Description), "Created", when(v.CreatedAt),
		"Used", volumeSize(v), "Config", orDash(strings.Join(cfg, ", ")),
		"Snapshots", orDash(strings.Join(snaps, ", ")), "Used by", orDash(strings.Join(v.UsedBy, ", "))))
}

func volumeGet(c *cli.Context, h volumeHost, a []string) error {
	v, err := h.volume(c.Context, a[0], a[1])
	if err != nil {
		return err
	}
	if a[2] == engine.VolumeKeyDescription {
		fmt.Println(v.Description)
		return nil
	}
	fmt.Println(v.Config[a[2]])
	return nil
}

func volumeSet(c *cli.Context, h volumeHost, a []string) error {
	set, err := keyValues(a[2:])
	if err != nil {
		return err
	}
	return h.update(c.Context, a[0], a[1], set, nil)
}

func volumeUnset(c *cli.Context, h volumeHost, a []string) error {
	return h.update(c.Context, a[0], a[1], nil, a[2:])
}

func volumeRename(c *cli.Context, h volumeHost, a []string) error {
	return h.rename(c.Context, a[0], a[1], a[2])
}

func volumeDelete(c *cli.Context, h volumeHost, a []string) error {
	if err := h.remove(c.Context, a[0], a[1]); err != nil {
		return err
	}
	fmt.Printf("Volume %s deleted from pool %s\n", a[1], a[0])
	return nil
}

func volumeExport(c *cli.Context, h volumeHost, a []string) error {
	opts := engine.ExportOptions{InstanceOnly: c.Bool("volume-only"), Optimized: c.Bool("optimized"), Compression: c.String("compression")}
	return writeOutput(a[2], "Volume "+a[1], func(w io.Writer) error {
		if bar := progress.Start(os.Stderr, "export "+a[1]); bar != nil {
			defer bar.Finish()
			opts.Progress = bar
		}
		return h.export(c.Context, a[0], a[1], w, opts)
	})
}

func volumeImport(c *cli.Context, h volumeHost, a []string) error {
	r, done, err := openInput(a[2], "backup file")
	if err != nil {
		return err
	}
	v, err := h.receive(c.Context, r, a[0], a[1])
	done()
	if err != nil {
		return err
	}
	fmt.Printf("Volume %s imported on pool %s, with %d snapshot(s)\n", v.Name, v.Pool, len(v.Snapshots))
	return nil
}

func volumeSnapshotCreate(c *cli.Context, h volumeHost, a []string) error {
	snap, err := h.snapshot(c, a[0], a[1], a[2])
	if err != nil {
		return err
	}
	if snap == "" { // a remote's, named by its snapshots.pattern
		fmt.Printf("Snapshot of %s created on pool %s\n", a[1], a[0])
		return nil
	}
	fmt.Printf("Snapshot %s/%s created on pool %s\n", a[1], snap, a[0])
	return nil
}

func volumeSnapshotList(c *cli.Context, h volumeHost, a []string) error {
	snaps, err := h.snapshots(c.Context, a[0], a[1])
	if err != nil {
		return err
	}
	return snapshotTable(c, snaps, func(s api.StorageVolumeSnapshot) (string, time.Time, time.Time) {
		return s.Name, s.CreatedAt, s.ExpiresAt
	})
}

func volumeSnapshotRestore(c *cli.Context, h volumeHost, a []string) error {
	return h.restore(c.Context, a[0], a[1], a[2])
}

func volumeSnapshotDelete(c *cli.Context, h volumeHost, a []string) error {
	return h.removeSnapshot(c.Context, a[0], a[1], a[2])
}
