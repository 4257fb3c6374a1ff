package main

import (
	"context"
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
	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/internal/store"
	"github.com/silo-dev/silo/internal/units"
	"github.com/silo-dev/silo/snapshot"
)

// keepAddressesFlag keeps, on a copy or an import, the MACs and addresses
// of the source's nics, which a copy otherwise gets anew.
var keepAddressesFlag = &cli.BoolFlag{Name: "keep-addresses", Usage: "keep the MACs and addresses of the source's nics (where they are free)"}

func commands() []*cli.Command {
	poolFlag := &cli.StringFlag{Name: "pool", Aliases: []string{"p"}, Usage: "storage pool (default: the pool named default)"}
	createFlags := []cli.Flag{poolFlag,
		&cli.StringSliceFlag{Name: "config", Aliases: []string{"c"}, Usage: "key=value config (repeatable): limits.cpu, limits.memory, limits.processes, runtime, init, environment.*, user.*"},
		&cli.BoolFlag{Name: "ephemeral", Aliases: []string{"e"}, Usage: "delete the instance when it stops"},
		&cli.StringSliceFlag{Name: "profile", Usage: "profile to apply (repeatable, in order; default: the default profile)"},
		&cli.BoolFlag{Name: "no-profiles", Usage: "apply no profile at all"},
		&cli.StringFlag{Name: "network", Aliases: []string{"n"}, Usage: "put eth0 on this network, in place of the profiles' nics"},
		&cli.BoolFlag{Name: "no-network", Usage: "give the instance no network at all"},
	}
	stopFlags := []cli.Flag{
		&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "kill at once"},
		timeoutFlag(engine.DefaultStopTimeout),
	}
	return append([]*cli.Command{
		{
			Name:  "pool",
			Usage: "manage storage pools",
			Subcommands: []*cli.Command{
				{Name: "create", Usage: "create a pool", ArgsUsage: "NAME", Flags: []cli.Flag{
					&cli.StringFlag{Name: "driver", Aliases: []string{"d"}, Value: "dir", Usage: "dir, btrfs or zfs"},
					&cli.StringFlag{Name: "source", Aliases: []string{"s"}, Usage: "an existing directory, btrfs mount, or zpool/dataset"},
					&cli.StringFlag{Name: "size", Usage: "make a loop-backed pool of this size (e.g. 20GiB)"},
				}, Action: withEngine(poolCreate)},
				{Name: "list", Aliases: []string{"ls"}, Usage: "list pools", ArgsUsage: "[REMOTE:]", Flags: []cli.Flag{formatFlag}, Action: listOn((*engine.Engine).Pools, (*client.Client).Pools, poolList)},
				{Name: "info", Usage: "show a pool", ArgsUsage: "NAME", Flags: []cli.Flag{formatFlag}, Action: onRemote(0, poolInfo, poolInfoRemote)},
				{Name: "delete", Aliases: []string{"rm"}, Usage: "delete a pool no instance uses", ArgsUsage: "NAME", Action: onName(func(c *cli.Context, e *engine.Engine, name string) error { return e.DeletePool(c.Context, name) }, "Pool %s deleted")},
			},
		},
		{
			Name:  "image",
			Usage: "manage images",
			Subcommands: []*cli.Command{
				{Name: "import", Usage: "import an image: a root filesystem tarball, an LXD unified image, or an LXD split image's metadata and rootfs (tarball or squashfs); - for stdin",
					ArgsUsage: "FILE [ROOTFS] [REMOTE:]", Flags: []cli.Flag{
						&cli.StringSliceFlag{Name: "alias", Aliases: []string{"a"}, Usage: "alias for the image (repeatable)"},
						&cli.StringFlag{Name: "fingerprint", Usage: "refuse the image unless its fingerprint is this"},
					}, Action: onImportTarget(imageImport)},
				imageExportCommand(), imageBuildCommand(), imageCopyCommand(),
				{Name: "list", Aliases: []string{"ls"}, Usage: "list images", ArgsUsage: "[REMOTE:]", Flags: []cli.Flag{formatFlag}, Action: listOn((*engine.Engine).Images, (*client.Client).Images, imageList)},
				{Name: "info", Usage: "show an image", ArgsUsage: "[REMOTE:]REF", Flags: []cli.Flag{formatFlag}, Action: onImageHost(1, 1, imageInfo)},
				{Name: "delete", Aliases: []string{"rm"}, Usage: "delete an image no instance uses", ArgsUsage: "[REMOTE:]REF", Action: onImageHost(1, 1, imageDelete)},
				{
					Name:  "alias",
					Usage: "manage image aliases",
					Subcommands: []*cli.Command{
						{Name: "add", Aliases: []string{"create"}, Usage: "give an image an alias", ArgsUsage: "[REMOTE:]ALIAS REF", Action: onImageHost(2, 2, aliasAdd)},
						{Name: "list", Aliases: []string{"ls"}, Usage: "list the aliases", ArgsUsage: "[REMOTE:]", Flags: []cli.Flag{formatFlag},
							Action: listOn((*engine.Engine).Aliases, (*client.Client).Aliases, aliasList)},
						{Name: "rename", Aliases: []string{"mv"}, Usage: "rename an alias", ArgsUsage: "[REMOTE:]ALIAS NEW", Action: onImageHost(2, 2, aliasRename)},
						{Name: "delete", Aliases: []string{"rm"}, Usage: "remove an alias", ArgsUsage: "[REMOTE:]ALIAS", Action: onImageHost(1, 1, aliasDelete)},
					},
				},
			},
		},
		{Name: "create", Usage: "create an instance from an image", ArgsUsage: "IMAGE NAME", Flags: createFlags, Action: onRemote(1, create, createRemote(false))},
		{Name: "launch", Usage: "create an instance and start it", ArgsUsage: "IMAGE NAME", Flags: append(createFlags, waitFlag, timeoutFlag(engine.DefaultReadyTimeout)), Action: onRemote(1, launch, createRemote(true))},
		{Name: "start", Usage: "start an instance", ArgsUsage: "NAME", Flags: []cli.Flag{waitFlag, timeoutFlag(engine.DefaultReadyTimeout)}, Action: onRemote(0, start, stateRemote("start"))},
		{Name: "stop", Usage: "stop an instance: its init shuts down, or is killed after the timeout", ArgsUsage: "NAME", Flags: stopFlags, Action: onRemote(0, stop, stateRemote("stop"))},
		{Name: "restart", Usage: "stop an instance if it runs, and start it", ArgsUsage: "NAME", Flags: append(stopFlags, waitFlag), Action: onRemote(0, restart, stateRemote("restart"))},
		{Name: "wait", Usage: "wait until a running instance is ready", ArgsUsage: "NAME", Flags: []cli.Flag{timeoutFlag(engine.DefaultReadyTimeout)}, Action: onRemote(0, wait, waitRemote)},
		{Name: "exec", Usage: "run a command in a running instance", ArgsUsage: "NAME [--] CMD...", Flags: []cli.Flag{
			&cli.BoolFlag{Name: "tty", Aliases: []string{"t"}, Usage: "give the command a terminal (the default when stdin is one)"},
			&cli.BoolFlag{Name: "no-tty", Aliases: []string{"T"}, Usage: "give the command no terminal"},
			&cli.StringSliceFlag{Name: "env", Usage: "K=V for the command (repeatable)"},
			&cli.StringFlag{Name: "cwd", Usage: "working directory in the instance"},
		}, Action: onRemote(0, execIn, execRemote)},
		{Name: "console", Usage: "attach to the console of a running instance (detach: ctrl+a q)", ArgsUsage: "NAME", Flags: []cli.Flag{
			&cli.BoolFlag{Name: "show-log", Usage: "print what init has written to its console, and return"},
		}, Action: onRemote(0, console, consoleRemote)},
		{
			Name:  "config",
			Usage: "manage instance config (limits apply at once to a running instance), or the server's (core.* keys, no instance named)",
			Subcommands: []*cli.Command{
				{Name: "set", Usage: "set config keys", ArgsUsage: "NAME KEY=VALUE... | core.KEY VALUE", Action: onRemote(0, configSet, configSetRemote)},
				{Name: "unset", Usage: "remove config keys", ArgsUsage: "NAME KEY... | core.KEY...", Action: onRemote(0, configUnset, configUnsetRemote)},
				{Name: "get", Usage: "print one config key", ArgsUsage: "NAME KEY | core.KEY", Action: onRemote(0, configGet, configGetRemote)},
				{Name: "show", Usage: "show an instance's profiles, config and devices, or with no NAME the server's config", ArgsUsage: "[NAME]", Flags: []cli.Flag{formatFlag,
					&cli.BoolFlag{Name: "expanded", Usage: "what the instance runs with: its profiles' config and devices, then its own"},
				}, Action: onRemote(0, configShow, configShowRemote)},
				deviceCommand(false), trustCommand(),
			},
		},
		{Name: "list", Aliases: []string{"ls"}, Usage: "list instances", ArgsUsage: "[REMOTE:]", Flags: []cli.Flag{formatFlag}, Action: listOn((*engine.Engine).Instances, (*client.Client).Instances, list)},
		{Name: "info", Usage: "show an instance", ArgsUsage: "NAME", Flags: []cli.Flag{formatFlag}, Action: onRemote(0, info, infoRemote)},
		monitorCommand(),
		{Name: "delete", Aliases: []string{"rm"}, Usage: "delete an instance and its snapshots", ArgsUsage: "NAME", Flags: []cli.Flag{
			&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "kill a running instance first"},
		}, Action: onRemote(0, deleteInstance, deleteRemote)},
		{Name: "rename", Aliases: []string{"mv"}, Usage: "rename an instance", ArgsUsage: "OLD NEW", Action: onRemote(0, rename, renameRemote)},
		{Name: "copy", Aliases: []string{"cp"}, Usage: "copy an instance, with its snapshots, or one of its snapshots, to a new instance, here or on another host", ArgsUsage: "[REMOTE:]SRC[/SNAP] [REMOTE:]DST", Flags: []cli.Flag{poolFlag, keepAddressesFlag,
			&cli.BoolFlag{Name: "instance-only", Usage: "leave the snapshots out"},
			&cli.BoolFlag{Name: "refresh", Usage: "bring DST, an earlier copy, up to date: add the snapshots it lacks, keep its own, take SRC's head; only differences move"},
			&cli.BoolFlag{Name: "force", Usage: "with --refresh: replace the snapshots of DST that have diverged from SRC's"}}, Action: betweenHosts(copyInstance, false)},
		{Name: "move", Usage: "move an instance, with its snapshots, to another host (a running one stops, and starts on the other), or rename it on one", ArgsUsage: "[REMOTE:]NAME [REMOTE:]NEW",
			Flags: []cli.Flag{poolFlag}, Action: betweenHosts(moveHere, true)},
		profileCommand(), networkCommand(), withAttach(volumeCommand()), remoteCommand(),
		{
			Name:  "file",
			Usage: "move files in and out of instances",
			Subcommands: []*cli.Command{
				{Name: "push", Usage: "copy a local file (- for stdin) into an instance", ArgsUsage: "LOCAL NAME/PATH", Flags: []cli.Flag{
					&cli.IntFlag{Name: "uid", Usage: "owner in the instance"},
					&cli.IntFlag{Name: "gid", Usage: "group in the instance"},
					&cli.StringFlag{Name: "mode", Usage: "octal mode (default: the local file's)"},
				}, Action: onRemote(1, filePush, filePushRemote)},
				{Name: "pull", Usage: "copy a file out of an instance (- for stdout)", ArgsUsage: "NAME/PATH LOCAL", Action: onRemote(0, filePull, filePullRemote)},
			},
		},
		{
			Name:  "snapshot",
			Usage: "manage instance snapshots",
			Subcommands: []*cli.Command{
				{Name: "create", Usage: "snapshot an instance (default names: by snapshots.pattern, else snap0, snap1...)", ArgsUsage: "NAME [SNAP]", Flags: snapshotFlags, Action: onRemote(0, snapshotCreate, snapshotCreateRemote)},
				{Name: "list", Aliases: []string{"ls"}, Usage: "list an instance's snapshots", ArgsUsage: "NAME", Flags: []cli.Flag{formatFlag}, Action: onRemote(0, snapshotList, snapshotListRemote)},
				{Name: "restore", Usage: "bring an instance back to any of its snapshots, keeping the others", ArgsUsage: "NAME SNAP", Flags: []cli.Flag{
					&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "stop a running instance, restore it, and start it again"},
				}, Action: onRemote(0, snapshotRestore, snapshotRestoreRemote)},
				{Name: "delete", Aliases: []string{"rm"}, Usage: "delete a snapshot", ArgsUsage: "NAME SNAP", Action: onRemote(0, snapshotDelete, snapshotDeleteRemote)},
			},
		},
	}, append(append(backupCommands(), serveCommand()), backgroundCommands()...)...)
}

// checkCreateFlags refuses the flags of create and launch that exclude
// each other.
func checkCreateFlags(c *cli.Context) error {
	if c.Bool("no-network") && c.String("network") != "" {
		return errkind.Wrap(errkind.Invalid, "--network and --no-network: give one")
	}
	if c.Bool("no-profiles") && len(c.StringSlice("profile")) > 0 {
		return errkind.Wrap(errkind.Invalid, "--profile and --no-profiles: give one")
	}
	return nil
}

func poolCreate(c *cli.Context, e *engine.Engine) error {
	a, err := args(c, 1, 1)
	if err != nil {
		return err
	}
	size, err := units.ParseSize(c.String("size"))
	if err != nil {
		return err
	}
	p, err := e.CreatePool(c.Context, a[0], c.String("driver"), c.String("source"), size)
	if err != nil {
		return err
	}
	fmt.Printf("Pool %s created (%s)\n", p.Name, p.Driver)
	return nil
}

func poolSource(p *api.StoragePool) string {
	if s := p.Config["source"]; s != "" {
		return s
	}
	if s := p.Config["size"]; s != "" {
		return "loop file, " + s
	}
	return "state directory"
}

// usedBy lists the names of the objects of collection (instances,
// images) that use pool p.
func usedBy(p *api.StoragePool, collection string) []string {
	var names []string
	for _, u := range p.UsedBy {
		if name, ok := strings.CutPrefix(u, api.Path(collection, "")); ok {
			names = append(names, name)
		}
	}
	return names
}

func poolList(c *cli.Context, pools []*api.StoragePool) error {
	var rows [][]string
	for _, p := range pools {
		rows = append(rows, []string{p.Name, p.Driver, poolSource(p),
			strconv.Itoa(len(usedBy(p, "instances"))), strconv.Itoa(len(usedBy(p, "images")))})
	}
	return output(c, pools, []string{"NAME", "DRIVER", "SOURCE", "INSTANCES", "IMAGES"}, rows)
}

func poolInfo(c *cli.Context, e *engine.Engine) error {
	a, err := args(c, 1, 1)
	if err != nil {
		return err
	}
	p, err := e.Pool(c.Context, a[0])
	if err != nil {
		return err
	}
	return showPool(c, p)
}

func poolInfoRemote(c *cli.Context, cl *client.Client, a []string) error {
	a, err := exactly(c, a, 1, 1)
	if err != nil {
		return err
	}
	p, err := cl.Pool(c.Context, a[0])
	if err != nil {
		return err
	}
	return showPool(c, p)
}

// showPool prints what pool info found, here or on a remote.
func showPool(c *cli.Context, p *api.StoragePool) error {
	return output(c, p, []string{"Name:", p.Name}, fields(
		"Driver", p.Driver, "Source", poolSource(p), "Created", when(p.CreatedAt),
		"Instances", orDash(strings.Join(usedBy(p, "instances"), ", ")), "Images", strconv.Itoa(len(usedBy(p, "images")))))
}

func imageImport(c *cli.Context, h imageHost, a []string) error {
	a, err := exactly(c, a, 1, 2)
	if err != nil {
		return err
	}
	r, done, err := openInput(a[0], "image file")
	if err != nil {
		return err
	}
	defer done()
	opts := engine.ImportOptions{Aliases: c.StringSlice("alias"), Fingerprint: c.String("fingerprint")}
	if a[1] != "" {
		f, err := os.Open(a[1])
		if err != nil {
			return fmt.Errorf("rootfs file: %w", errkind.FromErrno(err))
		}
		defer f.Close()
		opts.Rootfs = f
	}
	res, err := h.importImage(c.Context, r, opts)
	done()
	if err != nil {
		return err
	}
	if res.Existed {
		fmt.Printf("Image %.12s was already imported: nothing to do\n", res.Fingerprint)
		return nil
	}
	fmt.Printf("Image imported: %.12s (%s, %s, %s)\n", res.Fingerprint, humanSize(res.Size), layout(res.Image), res.Compression)
	return nil
}

// layout names an image's layout for people.
func layout(img *api.Image) string {
	if img.RootfsFormat != "" {
		return img.Layout + ", " + img.RootfsFormat
	}
	return img.Layout
}

func aliases(img *api.Image) string {
	var names []string
	for _, a := range img.Aliases {
		names = append(names, a.Name)
	}
	return orDash(strings.Join(names, ", "))
}

func imageList(c *cli.Context, imgs []*api.Image) error {
	var rows [][]string
	for _, img := range imgs {
		rows = append(rows, []string{aliases(img), img.Fingerprint[:12], humanSize(img.Size), img.Compression, when(img.UploadedAt)})
	}
	return output(c, imgs, []string{"ALIASES", "FINGERPRINT", "SIZE", "COMPRESSION", "IMPORTED"}, rows)
}

func imageInfo(c *cli.Context, h imageHost, a []string) error {
	img, err := h.image(c.Context, a[0])
	if err != nil {
		return err
	}
	pools, err := h.pools(c.Context)
	if err != nil {
		return err
	}
	var on []string
	for _, p := range pools {
		if slices.Contains(p.UsedBy, api.Path("images", img.Fingerprint)) {
			on = append(on, p.Name)
		}
	}
	rows := fields(
		"Aliases", aliases(img), "Size", humanSize(img.Size), "Layout", layout(img),
		"Compression", img.Compression, "Imported", when(img.UploadedAt), "On pools", orDash(strings.Join(on, ", ")))
	if img.Architecture != "" {
		rows = append(rows, fields("Architecture", img.Architecture, "Created", when(img.CreatedAt),
			"Templates", orDash(strings.Join(img.Templates, ", ")))...)
		for _, k := range slices.Sorted(maps.Keys(img.Properties)) {
			rows = append(rows, []string{"  " + k + ":", img.Properties[k]})
		}
	}
	return output(c, img, []string{"Fingerprint:", img.Fingerprint}, rows)
}

func imageDelete(c *cli.Context, h imageHost, a []string) error {
	if err := h.remove(c.Context, a[0]); err != nil {
		return err
	}
	fmt.Printf("Image %s deleted\n", a[0])
	return nil
}

func aliasAdd(c *cli.Context, h imageHost, a []string) error {
	return h.addAlias(c.Context, a[0], a[1])
}

func aliasRename(c *cli.Context, h imageHost, a []string) error {
	return h.renameAlias(c.Context, a[0], a[1])
}

func aliasDelete(c *cli.Context, h imageHost, a []string) error {
	return h.deleteAlias(c.Context, a[0])
}

func aliasList(c *cli.Context, aliases []api.ImageAliasesEntry) error {
	var rows [][]string
	for _, a := range aliases {
		rows = append(rows, []string{a.Name, a.Target[:12]})
	}
	return output(c, aliases, []string{"ALIAS", "FINGERPRINT"}, rows)
}

func create(c *cli.Context, e *engine.Engine) error {
	inst, err := createInstance(c, e)
	if err != nil {
		return err
	}
	fmt.Printf("Instance %s created on pool %s\n", inst.Name, inst.Pool)
	return nil
}

// createInstance makes the instance of a create or launch command.
func createInstance(c *cli.Context, e *engine.Engine) (*store.Instance, error) {
	a, err := args(c, 2, 2)
	if err != nil {
		return nil, err
	}
	cfg, err := engine.ParseConfig(c.StringSlice("config"))
	if err != nil {
		return nil, err
	}
	if err := checkCreateFlags(c); err != nil {
		return nil, err
	}
	opts := engine.CreateOptions{Config: cfg, Ephemeral: c.Bool("ephemeral"), Profiles: c.StringSlice("profile"),
		Network: c.String("network"), NoNetwork: c.Bool("no-network")}
	if c.Bool("no-profiles") {
		opts.Profiles = []string{}
	}
	return e.Create(c.Context, a[0], a[1], c.String("pool"), opts)
}

// whileRunning is what f says of i when it runs, and a dash otherwise.
func whileRunning(i *api.Instance, f func(*api.InstanceState) string) string {
	if i.StatusCode != api.Running {
		return "-"
	}
	return f(i.State)
}

func uptime(s *api.InstanceState) string {
	return time.Since(s.StartedAt).Truncate(time.Second).String()
}

func pid(s *api.InstanceState) string { return strconv.FormatInt(s.Pid, 10) }

func memory(s *api.InstanceState) string { return humanSize(s.Memory.Usage) }

func processes(s *api.InstanceState) string {
	if s.Processes < 0 {
		return "?"
	}
	return strconv.FormatInt(s.Processes, 10)
}

func list(c *cli.Context, insts []*api.Instance) error {
	var rows [][]string
	for _, i := range insts {
		rows = append(rows, []string{i.Name, strings.ToUpper(i.Status), addresses(i, "inet"), addresses(i, "inet6"),
			whileRunning(i, pid), whileRunning(i, memory), whileRunning(i, uptime), i.Image[:12], i.Pool(), strconv.Itoa(len(i.Snapshots))})
	}
	return output(c, insts, []string{"NAME", "STATE", "IPV4", "IPV6", "PID", "MEMORY", "UPTIME", "IMAGE", "POOL", "SNAPSHOTS"}, rows)
}

// addresses lists the addresses of family that i's nics hold, as lxc
// list shows them: "10.1.2.3 (eth0)".
func addresses(i *api.Instance, family string) string {
	var out []string
	for _, name := range slices.Sorted(maps.Keys(i.State.Network)) {
		for _, a := range i.State.Network[name].Addresses {
			if a.Family == family {
				out = append(out, a.Address+" ("+name+")")
			}
		}
	}
	return orDash(strings.Join(out, ", "))
}

func info(c *cli.Context, e *engine.Engine) error {
	a, err := args(c, 1, 1)
	if err != nil {
		return err
	}
	i, err := e.Instance(c.Context, a[0])
	if err != nil {
		return err
	}
	return showInstance(c, i)
}

// showInstance prints what info found, here or on a remote.
func showInstance(c *cli.Context, i *api.Instance) error {
	var snaps, cfg []string
	for _, s := range i.Snapshots {
		snaps = append(snaps, snapshotText(s.Name, s.ExpiresAt))
	}
	for _, k := range slices.Sorted(maps.Keys(i.Config)) {
		cfg = append(cfg, k+"="+i.Config[k])
	}
	return output(c, i, []string{"Name:", i.Name}, fields(
		"State", strings.ToLower(i.Status), "PID", whileRunning(i, pid), "Uptime", whileRunning(i, uptime),
		"Memory", whileRunning(i, memory), "Processes", whileRunning(i, processes),
		"Image", i.Image[:12], "Pool", i.Pool(), "Ephemeral", strconv.FormatBool(i.Ephemeral),
		"Created", when(i.CreatedAt), "Disk usage", rootUsage(i),
		"Config", orDash(strings.Join(cfg, ", ")), "Snapshots", orDash(strings.Join(snaps, ", ")),
		"Privileged", strconv.FormatBool(i.Privileged), "Idmap", idmapText(i.Idmap),
		"Profiles", orDash(strings.Join(i.Profiles, ", ")), "Network", nicsText(i)))
}

// nicsText shows each nic: MAC, host side, addresses and traffic.
func nicsText(i *api.Instance) string {
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(i.State.Network)) {
		n := i.State.Network[name]
		var addrs []string
		for _, a := range n.Addresses {
			addrs = append(addrs, a.Address+"/"+a.Netmask)
		}
		s := fmt.Sprintf("%s: %s", name, n.Hwaddr)
		if n.HostName != "" {
			s += " host " + n.HostName
		}
		if len(addrs) > 0 {
			s += " " + strings.Join(addrs, " ")
		}
		if i.StatusCode == api.Running {
			s += fmt.Sprintf(" (in %s, out %s)", humanSize(n.Counters.BytesReceived), humanSize(n.Counters.BytesSent))
		}
		parts = append(parts, s)
	}
	return orDash(strings.Join(parts, "; "))
}

// idmapText shows an instance's map as LXD's raw.idmap writes one: "uid
// 1000000-1065535 as 0-65535, gid ...".
func idmapText(entries []api.IdmapEntry) string {
	var parts []string
	for _, m := range entries {
		kind := "uid"
		if m.IsGID {
			kind = "gid"
		}
		parts = append(parts, fmt.Sprintf("%s %d-%d as %d-%d", kind, m.HostID, m.HostID+m.Range-1, m.NSID, m.NSID+m.Range-1))
	}
	return orDash(strings.Join(parts, ", "))
}

func deleteInstance(c *cli.Context, e *engine.Engine) error {
	a, err := args(c, 1, 1)
	if err != nil {
		return err
	}
	return e.Delete(c.Context, a[0], c.Bool("force"))
}

func rename(c *cli.Context, e *engine.Engine) error {
	a, err := args(c, 2, 2)
	if err != nil {
		return err
	}
	return e.Rename(c.Context, a[0], a[1])
}

func copyInstance(c *cli.Context, e *engine.Engine) error {
	a, err := args(c, 2, 2)
	if err != nil {
		return err
	}
	src, snap, _ := strings.Cut(a[0], "/")
	if c.Bool("refresh") {
		return refreshInstance(c, e, src, snap, a[1])
	}
	inst, err := e.Copy(c.Context, src, a[1], engine.CopyOptions{Snapshot: snap, Pool: c.String("pool"),
		KeepAddresses: c.Bool(keepAddressesFlag.Name), InstanceOnly: c.Bool("instance-only")})
	if err != nil {
		return err
	}
	fmt.Printf("Instance %s created on pool %s\n", inst.Name, inst.Pool)
	return nil
}

func refreshInstance(c *cli.Context, e *engine.Engine, src, snap, dst string) error {
	if snap != "" || c.IsSet("pool") || c.Bool("instance-only") {
		return errkind.Wrap(errkind.Invalid, "copy --refresh takes a whole instance, the target's pool, and its snapshots: leave out /SNAP, --pool and --instance-only")
	}
	res, err := e.Refresh(c.Context, src, dst, c.Bool("force"))
	if err != nil {
		return err
	}
	printRefreshed("Instance", dst, src, res)
	return nil
}

// printRefreshed says what a refresh of dst from src did.
func printRefreshed(what, dst, src string, res *engine.RefreshResult) {
	fmt.Printf("%s %s refreshed from %s: %d snapshots added, %d replaced, %d bytes moved by %s\n", what, dst, src, len(res.Added), len(res.Replaced), res.Bytes, res.By)
}

// instancePath splits NAME/PATH.
func instancePath(s string) (name, path string, err error) {
	name, rest, ok := strings.Cut(s, "/")
	if !ok || name == "" || rest == "" {
		return "", "", errkind.Wrap(errkind.Invalid, "%q: give NAME/PATH, as in web/etc/hostname", s)
	}
	return name, "/" + rest, nil
}

func filePush(c *cli.Context, e *engine.Engine) error {
	return pushFile(c, positional(c), e.PushFile)
}

// pushFile sends the local file a[0] (- for stdin) to a[1], NAME/PATH,
// through push: the engine's, or a remote's.
func pushFile(c *cli.Context, a []string, push func(ctx context.Context, name, path string, r io.Reader, mode os.FileMode, uid, gid int) error) error {
	a, err := exactly(c, a, 2, 2)
	if err != nil {
		return err
	}
	name, path, err := instancePath(a[1])
	if err != nil {
		return err
	}
	var r io.Reader = os.Stdin
	mode := os.FileMode(0o644)
	if a[0] != "-" {
		f, err := os.Open(a[0])
		if err != nil {
			return fmt.Errorf("local file: %w", errkind.FromErrno(err))
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return err
		}
		if !st.Mode().IsRegular() {
			return errkind.Wrap(errkind.Invalid, "local file %s is not a regular file", a[0])
		}
		r, mode = f, st.Mode()
	}
	if m := c.String("mode"); m != "" {
		n, err := strconv.ParseUint(m, 8, 32)
		if err != nil || n > 0o7777 {
			return errkind.Wrap(errkind.Invalid, "invalid mode %q: give octal, as in 0644", m)
		}
		mode = engine.FileMode(n)
	}
	return push(c.Context, name, path, r, mode, c.Int("uid"), c.Int("gid"))
}

func filePull(c *cli.Context, e *engine.Engine) error {
	a, err := args(c, 2, 2)
	if err != nil {
		return err
	}
	name, path, err := instancePath(a[0])
	if err != nil {
		return err
	}
	f, err := e.PullFile(c.Context, name, path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	return pullTo(a, f, st.Mode().Perm())
}

// pullTo writes what file pull read from a[0] to a[1]: stdout for -, else
// a file of mode perm, whole or not at all.
func pullTo(a []string, f io.Reader, perm os.FileMode) error {
	if a[1] == "-" {
		_, err := io.Copy(os.Stdout, f)
		return err
	}
	tmp := a[1] + ".silo-pull"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err = io.Copy(out, f); err == nil {
		err = out.Close()
	} else {
		out.Close()
	}
	if err == nil {
		err = os.Rename(tmp, a[1])
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("pull %s: %w", a[0], err)
	}
	return nil
}

func snapshotCreate(c *cli.Context, e *engine.Engine) error {
	a, err := args(c, 1, 2)
	if err != nil {
		return err
	}
	s, err := e.CreateSnapshot(c.Context, a[0], snapshotOptions(c, a[1]))
	if err != nil {
		return err
	}
	fmt.Printf("Snapshot %s/%s created\n", a[0], s.Name)
	return nil
}

func snapshotList(c *cli.Context, e *engine.Engine) error {
	a, err := args(c, 1, 1)
	if err != nil {
		return err
	}
	snaps, err := e.Snapshots(c.Context, a[0])
	if err != nil {
		return err
	}
	return snapshotTable(c, snaps, instanceSnapshotFields)
}

func instanceSnapshotFields(s api.InstanceSnapshot) (string, time.Time, time.Time) {
	return s.Name, s.CreatedAt, s.ExpiresAt
}

// snapshotTable prints snaps, an instance's or a volume's, each of which
// has a name, a time of creation and one of expiry.
func snapshotTable[S any](c *cli.Context, snaps []S, fields func(S) (string, time.Time, time.Time)) error {
	var rows [][]string
	for _, s := range snaps {
		name, created, expires := fields(s)
		rows = append(rows, []string{name, when(created), when(expires)})
	}
	return output(c, snaps, []string{"NAME", "CREATED", "EXPIRES"}, rows)
}

// snapshotText names a snapshot in info, with its expiry if it has one.
func snapshotText(name string, expires time.Time) string {
	if expires.IsZero() {
		return name
	}
	return name + " (expires " + when(expires) + ")"
}

// snapshotFlags are the flags of snapshot create, as lxc's.
var snapshotFlags = []cli.Flag{
	&cli.StringFlag{Name: "expiry", Usage: "delete the snapshot after this long (2d, 1w, 1d 3H; units M H d w m y) in place of snapshots.expiry"},
	&cli.BoolFlag{Name: "no-expiry", Usage: "keep the snapshot for good, whatever snapshots.expiry says"},
}

// snapshotOptions reads snapshotFlags, for a snapshot called name.
func snapshotOptions(c *cli.Context, name string) engine.SnapshotOptions {
	return engine.SnapshotOptions{Name: name, Expiry: c.String("expiry"), NoExpiry: c.Bool("no-expiry")}
}

// snapshotRequest is snapshotOptions for a remote, which takes the expiry
// as a time, as LXD's API does: the zero time for none.
func snapshotRequest(c *cli.Context, name string) (api.InstanceSnapshotsPost, error) {
	req := api.InstanceSnapshotsPost{Name: name}
	switch expiry := c.String("expiry"); {
	case expiry != "" && c.Bool("no-expiry"):
		return req, errkind.Wrap(errkind.Invalid, "give --expiry or --no-expiry, not both")
	case expiry != "":
		t, err := snapshot.Expiry(expiry, time.Now())
		if err != nil {
			return req, err
		}
		req.ExpiresAt = &t
	case c.Bool("no-expiry"):
		req.ExpiresAt = &time.Time{}
	}
	return req, nil
}

func snapshotRestore(c *cli.Context, e *engine.Engine) error {
	a, err := args(c, 2, 2)
	if err != nil {
		return err
	}
	return e.RestoreSnapshot(c.Context, a[0], a[1], c.Bool("force"))
}

func snapshotDelete(c *cli.Context, e *engine.Engine) error {
	a, err := args(c, 2, 2)
	if err != nil {
		return err
	}
	return e.DeleteSnapshot(c.Context, a[0], a[1])
}

// rootUsage is what the root disk of i holds, and of how much when it
// has a cap.
func rootUsage(i *api.Instance) string {
	for name, d := range i.ExpandedDevices {
		if d["type"] == "disk" && d["path"] == "/" {
			s := i.State.Disk[name]
			if s.Total > 0 {
				return humanSize(s.Usage) + " of " + humanSize(s.Total)
			}
			return humanSize(s.Usage)
		}
	}
	return humanSize(0)
}
