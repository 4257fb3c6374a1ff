package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/client"
	"github.com/silo-dev/silo/engine"
	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/internal/store"
	"github.com/silo-dev/silo/remote"
)

// remoteAction is a command carried out on a remote through its client,
// with the positional arguments, the remote's name taken off the one that
// carried it.
type remoteAction func(c *cli.Context, cl *client.Client, a []string) error

// onRemote runs local, directly on this host's engine, unless the
// reference in positional argument i names a remote (h2:web, h2:, or any
// name when the default remote is another host): then it runs remote.
func onRemote(i int, local func(*cli.Context, *engine.Engine) error, remoteFn remoteAction) cli.ActionFunc {
	direct := withEngine(local)
	return func(c *cli.Context) error {
		if _, err := remote.Dir(); err != nil {
			return direct(c) // no config directory: no remotes
		}
		cfg, err := loadRemotes()
		if err != nil {
			return err
		}
		a := c.Args().Slice()
		ref := cfg.Parse("")
		if i < len(a) {
			ref = cfg.Parse(a[i])
		}
		if i < len(a) {
			a[i] = ref.Name
		}
		if ref.IsLocal() {
			c.Context = context.WithValue(c.Context, localArgs{}, a)
			return direct(c)
		}
		cl, err := cfg.Client(ref.Remote)
		if err != nil {
			return err
		}
		return remoteFn(c, cl, a)
	}
}

// onHost runs fn, a command of a collection that both this host's engine
// and a remote's client serve, on the host that positional argument 0
// names (h2:NAME; local: or none, this one): local and remote make the
// one or the other host. fn gets between min and max positional
// arguments (max -1: any number), the remote's name taken off.
func onHost[H any](local func(*engine.Engine) H, remote func(*client.Client) H, min, max int, fn func(c *cli.Context, h H, a []string) error) cli.ActionFunc {
	run := func(c *cli.Context, h H, a []string) error {
		n := max
		if n < 0 {
			n = len(a)
		}
		a, err := exactly(c, a, min, n)
		if err != nil {
			return err
		}
		return fn(c, h, a)
	}
	return onRemote(0, func(c *cli.Context, e *engine.Engine) error { return run(c, local(e), positional(c)) },
		func(c *cli.Context, cl *client.Client, a []string) error { return run(c, remote(cl), a) })
}

// patchConfig is the config of a PATCH that sets the keys of set and
// removes those of unset, which it gives as "".
func patchConfig(set map[string]string, unset []string) map[string]string {
	cfg := maps.Clone(set)
	if cfg == nil {
		cfg = map[string]string{}
	}
	for _, k := range unset {
		cfg[k] = ""
	}
	return cfg
}

// localArgs carries, for args to read, the positional arguments of a
// command run on this host with local: taken off the reference.
type localArgs struct{}

// exactly checks a remote command's positional arguments, as args does.
func exactly(c *cli.Context, a []string, min, max int) ([]string, error) {
	if len(a) < min || len(a) > max || (min > 0 && a[0] == "") {
		return nil, usage(c)
	}
	for len(a) < max {
		a = append(a, "")
	}
	return a, nil
}

// awaited returns a function that waits for the operation a request
// started, unless the request failed: awaited(ctx)(cl.DeleteInstance(...)).
func awaited(ctx context.Context) func(*client.Operation, error) error {
	return func(op *client.Operation, err error) error {
		if err != nil {
			return err
		}
		return op.Wait(ctx)
	}
}

// listOn is a list command of a collection, here or on the remote that
// its one argument names (h2:): fetched by local or remote, printed by
// show.
func listOn[T any](local func(*engine.Engine, context.Context) ([]T, error), remote func(*client.Client, context.Context) ([]T, error),
	show func(*cli.Context, []T) error) cli.ActionFunc {
	return onRemote(0, func(c *cli.Context, e *engine.Engine) error {
		if _, err := args(c, 0, 1); err != nil {
			return err
		}
		items, err := local(e, c.Context)
		if err != nil {
			return err
		}
		return show(c, items)
	}, func(c *cli.Context, cl *client.Client, a []string) error {
		if a, err := exactly(c, a, 0, 1); err != nil || a[0] != "" {
			return errkind.Wrap(errkind.Invalid, "usage: silo %s [REMOTE:]", c.Command.HelpName[len("silo "):])
		}
		items, err := remote(cl, c.Context)
		if err != nil {
			return err
		}
		return show(c, items)
	})
}

func infoRemote(c *cli.Context, cl *client.Client, a []string) error {
	a, err := exactly(c, a, 1, 1)
	if err != nil {
		return err
	}
	i, _, err := cl.Instance(c.Context, a[0])
	if err != nil {
		return err
	}
	return showInstance(c, i)
}

// waitRemote waits until instance a[0] on the remote is ready.
func waitRemote(c *cli.Context, cl *client.Client, a []string) error {
	a, err := exactly(c, a, 1, 1)
	if err != nil {
		return err
	}
	return readyOn(c, cl, a[0], c.Duration("timeout"))
}

// readyOn waits until instance name on the remote is ready, for at most
// timeout.
func readyOn(c *cli.Context, cl *client.Client, name string, timeout time.Duration) error {
	return awaited(c.Context)(cl.UpdateInstanceState(c.Context, name, api.InstanceStatePut{Action: "wait", Timeout: int(timeout.Seconds())}))
}

// waitIfAskedOn is waitIfAsked for an instance on a remote.
func waitIfAskedOn(c *cli.Context, cl *client.Client, name string) error {
	if !c.Bool("wait") {
		return nil
	}
	timeout := c.Duration("timeout")
	if c.Command.Name == "restart" {
		timeout = engine.DefaultReadyTimeout // its --timeout is the stop's
	}
	return readyOn(c, cl, name, timeout)
}

// profilesDevices are the devices that profiles (the default profile
// when nil) give an instance on the remote, the later ones over the
// earlier.
func profilesDevices(ctx context.Context, cl *client.Client, profiles []string) (store.Devices, error) {
	if profiles == nil {
		profiles = []string{store.DefaultProfile}
	}
	devs := store.Devices{}
	for _, name := range profiles {
		p, _, err := cl.Profile(ctx, name)
		if err != nil {
			return nil, err
		}
		maps.Copy(devs, store.DevicesOf(p.Devices))
	}
	return devs, nil
}

func createRemote(start bool) remoteAction {
	return func(c *cli.Context, cl *client.Client, a []string) error {
		a, err := exactly(c, a, 2, 2)
		if err != nil {
			return err
		}
		if err := checkCreateFlags(c); err != nil {
			return err
		}
		cfg, err := engine.ParseConfig(c.StringSlice("config"))
		if err != nil {
			return err
		}
		source, err := imageOn(c, cl, a[0])
		if err != nil {
			return err
		}
		req := api.InstancesPost{Name: a[1], Source: source, Config: cfg, Ephemeral: c.Bool("ephemeral"), Start: start}
		if p := c.StringSlice("profile"); len(p) > 0 {
			req.Profiles = p
		} else if c.Bool("no-profiles") {
			req.Profiles = []string{}
		}
		devs := store.Devices{}
		if pool := c.String("pool"); pool != "" {
			devs[api.RootDevice] = store.Device{"type": "disk", "path": "/", "pool": pool}
		}
		if network, none := c.String("network"), c.Bool("no-network"); network != "" || none {
			if network != "" && network != store.DefaultNetwork {
				// As here: the default network is made when first used.
				if _, _, err := cl.Network(c.Context, network); err != nil {
					return err
				}
			}
			expanded, err := profilesDevices(c.Context, cl, req.Profiles)
			if err != nil {
				return err
			}
			devs = engine.NICDevices(expanded, devs, network)
		}
		if len(devs) > 0 {
			req.Devices = devs.Map()
		}
		if err := awaited(c.Context)(cl.CreateInstance(c.Context, req)); err != nil {
			return err
		}
		verb := "created"
		if start {
			verb = "created and started"
		}
		fmt.Printf("Instance %s %s\n", a[1], verb)
		return waitIfAskedOn(c, cl, a[1])
	}
}

// stateRemote starts, stops or restarts an instance on a remote.
func stateRemote(action string) remoteAction {
	return func(c *cli.Context, cl *client.Client, a []string) error {
		a, err := exactly(c, a, 1, 1)
		if err != nil {
			return err
		}
		req := api.InstanceStatePut{Action: action, Force: c.Bool("force")}
		if action != "start" {
			req.Timeout = int(c.Duration("timeout").Seconds())
		}
		if err := awaited(c.Context)(cl.UpdateInstanceState(c.Context, a[0], req)); err != nil {
			return err
		}
		return waitIfAskedOn(c, cl, a[0])
	}
}

func deleteRemote(c *cli.Context, cl *client.Client, a []string) error {
	a, err := exactly(c, a, 1, 1)
	if err != nil {
		return err
	}
	if c.Bool("force") {
		i, _, err := cl.Instance(c.Context, a[0])
		if err != nil {
			return err
		}
		if i.StatusCode == api.Running {
			if err := awaited(c.Context)(cl.UpdateInstanceState(c.Context, a[0], api.InstanceStatePut{Action: "stop", Force: true})); err != nil {
				return err
			}
		}
	}
	return awaited(c.Context)(cl.DeleteInstance(c.Context, a[0]))
}

func snapshotCreateRemote(c *cli.Context, cl *client.Client, a []string) error {
	a, err := exactly(c, a, 1, 2)
	if err != nil {
		return err
	}
	req, err := snapshotRequest(c, a[1])
	if err != nil {
		return err
	}
	if err := awaited(c.Context)(cl.CreateSnapshot(c.Context, a[0], req)); err != nil {
		return err
	}
	fmt.Printf("Snapshot of %s created\n", a[0])
	return nil
}

func snapshotListRemote(c *cli.Context, cl *client.Client, a []string) error {
	a, err := exactly(c, a, 1, 1)
	if err != nil {
		return err
	}
	snaps, err := cl.Snapshots(c.Context, a[0])
	if err != nil {
		return err
	}
	return snapshotTable(c, snaps, instanceSnapshotFields)
}

func snapshotRestoreRemote(c *cli.Context, cl *client.Client, a []string) error {
	a, err := exactly(c, a, 2, 2)
	if err != nil {
		return err
	}
	return awaited(c.Context)(cl.RestoreSnapshot(c.Context, a[0], a[1]))
}

func snapshotDeleteRemote(c *cli.Context, cl *client.Client, a []string) error {
	a, err := exactly(c, a, 2, 2)
	if err != nil {
		return err
	}
	return awaited(c.Context)(cl.DeleteSnapshot(c.Context, a[0], a[1]))
}

func renameRemote(c *cli.Context, cl *client.Client, a []string) error {
	a, err := exactly(c, a, 2, 2)
	if err != nil {
		return err
	}
	// To another host would be a move.
	if err := oneHost(c, a, 1, "a rename"); err != nil {
		return err
	}
	return awaited(c.Context)(cl.RenameInstance(c.Context, a[0], a[1]))
}

// oneHost takes the remote off argument i of a command that stays on the
// host of its first (rename h2:a h2:b, as lxc takes it), and refuses
// another host's: what is, such as "a rename", names the command.
func oneHost(c *cli.Context, a []string, i int, what string) error {
	dst, other, err := otherHost(c, a, i)
	if err != nil {
		return err
	}
	if other {
		return errkind.Wrap(errkind.Invalid, "%s %s to %s: %s stays on one host", c.Command.Name, c.Args().Get(0), a[i], what)
	}
	a[i] = dst.Name
	return nil
}

// otherHost reads argument i of a command whose first argument named the
// host it runs on: the reference, and whether it names another host. A
// name with no remote is on the first's host.
func otherHost(c *cli.Context, a []string, i int) (remote.Ref, bool, error) {
	if !strings.Contains(a[i], ":") {
		return remote.Ref{Name: a[i]}, false, nil
	}
	cfg, err := loadRemotes()
	if err != nil {
		return remote.Ref{}, false, err
	}
	src, dst := cfg.Parse(c.Args().Get(0)), cfg.Parse(a[i])
	return dst, dst.Remote != src.Remote, nil
}

// notServerRemote refuses the server keys of a remote: /1.0's PUT is not
// served yet.
func notServerRemote(a []string) error {
	if len(a) == 0 || a[0] == "" || engine.IsServerKey(strings.SplitN(a[0], "=", 2)[0]) {
		return errkind.Wrap(errkind.Invalid, "a remote's server config is not served yet: name an instance, REMOTE:NAME")
	}
	return nil
}

// patchConfigRemote writes an instance's keys on a remote: PATCH sets
// them, and removes those it gives empty.
func patchConfigRemote(c *cli.Context, cl *client.Client, name string, cfg map[string]string) error {
	return awaited(c.Context)(cl.PatchInstance(c.Context, name, api.InstancePut{Config: cfg}, ""))
}

func configSetRemote(c *cli.Context, cl *client.Client, a []string) error {
	if err := notServerRemote(a); err != nil {
		return err
	}
	if len(a) < 2 {
		return errkind.Wrap(errkind.Invalid, "usage: silo config set REMOTE:NAME KEY=VALUE...")
	}
	cfg, err := engine.ParseConfig(a[1:])
	if err != nil {
		return err
	}
	return patchConfigRemote(c, cl, a[0], cfg)
}

func configUnsetRemote(c *cli.Context, cl *client.Client, a []string) error {
	if err := notServerRemote(a); err != nil {
		return err
	}
	if len(a) < 2 {
		return errkind.Wrap(errkind.Invalid, "usage: silo config unset REMOTE:NAME KEY...")
	}
	return patchConfigRemote(c, cl, a[0], patchConfig(nil, a[1:]))
}

func configShowRemote(c *cli.Context, cl *client.Client, a []string) error {
	if err := notServerRemote(a); err != nil {
		return err
	}
	i, _, err := cl.Instance(c.Context, a[0])
	if err != nil {
		return err
	}
	return showConfig(c, i)
}

func configGetRemote(c *cli.Context, cl *client.Client, a []string) error {
	if err := notServerRemote(a); err != nil {
		return err
	}
	a, err := exactly(c, a, 2, 2)
	if err != nil {
		return err
	}
	i, _, err := cl.Instance(c.Context, a[0])
	if err != nil {
		return err
	}
	fmt.Println(i.Config[a[1]])
	return nil
}

func filePushRemote(c *cli.Context, cl *client.Client, a []string) error {
	return pushFile(c, a, func(ctx context.Context, name, path string, r io.Reader, mode os.FileMode, uid, gid int) error {
		return cl.PushFile(ctx, name, path, r, octalMode(mode), uid, gid)
	})
}

// octalMode is mode as the octal number people write (4755), which
// LXD's file headers carry: engine.FileMode undone.
func octalMode(mode os.FileMode) uint32 {
	n := uint32(mode.Perm())
	for _, bit := range []uint32{0o4000, 0o2000, 0o1000} {
		if mode&engine.FileMode(uint64(bit)) != 0 {
			n |= bit
		}
	}
	return n
}

func filePullRemote(c *cli.Context, cl *client.Client, a []string) error {
	a, err := exactly(c, a, 2, 2)
	if err != nil {
		return err
	}
	name, path, err := instancePath(a[0])
	if err != nil {
		return err
	}
	f, info, err := cl.PullFile(c.Context, name, path)
	if err != nil {
		return err
	}
	defer f.Close()
	return pullTo(a, f, info.Mode)
}

// notRemote refuses a command that does not reach remotes yet when one of
// its first two arguments names one (copy web h2:web, console h2:web), rather
// than take h2:web for a local name. Commands that onRemote dispatched
// have had their remote taken off already.
func notRemote(c *cli.Context) error { return notRemoteIn(c, 2) }

// notRemoteIn is notRemote for a command whose first n arguments may be
// references (volume attach POOL VOLUME INSTANCE).
func notRemoteIn(c *cli.Context, n int) error {
	if _, dispatched := c.Context.Value(localArgs{}).([]string); dispatched {
		return nil
	}
	a := c.Args().Slice()
	a = a[:min(len(a), n)]
	if !slices.ContainsFunc(a, func(s string) bool { return strings.Contains(s, ":") }) {
		return nil
	}
	if _, err := remote.Dir(); err != nil {
		return nil
	}
	cfg, err := loadRemotes()
	if err != nil {
		return err
	}
	for _, s := range a {
		if ref := cfg.Parse(s); !ref.IsLocal() && strings.Contains(s, ":") {
			return errkind.Wrap(errkind.Invalid, "%s: silo %s does not reach remotes yet", s, c.Command.HelpName[len("silo "):])
		}
	}
	return nil
}

// imageOn is the source of an instance made on a remote from image ref:
// the remote's own image, or else this host's, copied there first, as lxc
// launch copies an image the target lacks.
func imageOn(c *cli.Context, cl *client.Client, ref string) (api.InstanceSource, error) {
	if _, err := cl.Image(c.Context, ref); !errors.Is(err, errkind.NotFound) {
		return api.InstanceSource{Type: "image", Alias: ref}, err
	}
	cfg, err := loadRemotes()
	if err != nil {
		return api.InstanceSource{}, err
	}
	e, err := engine.Open(c.Context, c.String("state-dir"))
	if err != nil {
		return api.InstanceSource{}, err
	}
	defer e.Close()
	img, err := e.Image(c.Context, ref)
	if err != nil {
		return api.InstanceSource{}, errkind.Wrap(errkind.NotFound, "image %q is neither on the remote nor here", ref)
	}
	if _, err := cl.Image(c.Context, img.Fingerprint); err == nil {
		return api.InstanceSource{Type: "image", Fingerprint: img.Fingerprint}, nil // there under another name
	}
	dst := cfg.Parse(c.Args().Get(1))
	_, fp, err := transferImage(c, cfg, e, remote.Ref{Remote: remote.Local, Name: ref}, remote.Ref{Remote: dst.Remote}, nil, false)
	if err != nil {
		return api.InstanceSource{}, fmt.Errorf("copy image %s to %s: %w", ref, dst.Remote, err)
	}
	return api.InstanceSource{Type: "image", Fingerprint: fp}, nil
}
