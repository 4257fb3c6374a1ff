package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/client"
	"github.com/silo-dev/silo/engine"
	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/internal/compression"
	"github.com/silo-dev/silo/internal/iopipe"
	"github.com/silo-dev/silo/remote"
)

// moveHere renames an instance: a move that stays on this host.
func moveHere(c *cli.Context, e *engine.Engine) error {
	if c.IsSet("pool") {
		return errkind.Wrap(errkind.Invalid, "move --pool between pools of one host is not served: copy --pool, then delete")
	}
	return rename(c, e)
}

// betweenHosts runs local, on this host's engine, when both of a copy's
// or a move's references are to this host, and transfer otherwise.
func betweenHosts(local func(*cli.Context, *engine.Engine) error, move bool) cli.ActionFunc {
	direct := withEngine(local)
	return func(c *cli.Context) error {
		a := c.Args().Slice()
		if _, err := remote.Dir(); err != nil || len(a) != 2 {
			return direct(c)
		}
		cfg, err := loadRemotes()
		if err != nil {
			return err
		}
		src, dst := cfg.Parse(a[0]), cfg.Parse(a[1])
		if src.IsLocal() && dst.IsLocal() {
			c.Context = context.WithValue(c.Context, localArgs{}, []string{src.Name, dst.Name})
			return direct(c)
		}
		return transfer(c, cfg, src, dst, move)
	}
}

// host is one end of a transfer: this host's engine, or a remote's
// client.
type host interface {
	// instance describes instance name, without its disk usage.
	instance(ctx context.Context, name string) (*api.Instance, error)
	poolDriver(ctx context.Context, pool string) (string, error)
	snapshots(ctx context.Context, name string) ([]api.InstanceSnapshot, error)
	// streamID is the driver's stream ID of snapshot snap of name (see
	// engine.SnapshotStreamID).
	streamID(ctx context.Context, name, snap string) (string, error)
	// export starts the stream of instance name.
	export(ctx context.Context, name string, opts engine.ExportOptions) (io.ReadCloser, error)
	// receive makes an instance from a backup stream, or refreshes one,
	// and returns its name.
	receive(ctx context.Context, r io.Reader, opts client.ImportOptions) (string, error)
	setState(ctx context.Context, name, action string) error
	delete(ctx context.Context, name string) error
	rename(ctx context.Context, name, to string) error
}

type localHost struct{ e *engine.Engine }

func (h localHost) instance(ctx context.Context, name string) (*api.Instance, error) {
	return h.e.InstanceBrief(ctx, name)
}

func (h localHost) poolDriver(ctx context.Context, pool string) (string, error) {
	p, err := h.e.Pool(ctx, orDefault(pool))
	if err != nil {
		return "", err
	}
	return p.Driver, nil
}

func (h localHost) snapshots(ctx context.Context, name string) ([]api.InstanceSnapshot, error) {
	return h.e.Snapshots(ctx, name)
}

func (h localHost) streamID(ctx context.Context, name, snap string) (string, error) {
	return h.e.SnapshotStreamID(ctx, name, snap)
}

func (h localHost) export(ctx context.Context, name string, opts engine.ExportOptions) (io.ReadCloser, error) {
	pr, pw := iopipe.Pipe(iopipe.Buffer)
	s := &exportStream{PipeReader: pr, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		pw.CloseWithError(h.e.Export(ctx, name, pw, opts))
	}()
	return s, nil
}

// exportStream is an export read as it is written; Close stops it and
// waits for it to end, so that what it took to read the instance (a
// snapshot of a running one) is released before the command exits.
type exportStream struct {
	*iopipe.PipeReader
	done chan struct{}
}

func (s *exportStream) Close() error {
	s.PipeReader.Close()
	<-s.done
	return nil
}

func (h localHost) receive(ctx context.Context, r io.Reader, opts client.ImportOptions) (string, error) {
	if opts.Refresh {
		_, err := h.e.ReceiveRefresh(ctx, r, opts.Name, opts.Force)
		return opts.Name, err
	}
	receive := h.e.Import
	if opts.Copy {
		receive = h.e.ReceiveCopy
	}
	inst, err := receive(ctx, r, opts.Name, opts.Pool, opts.KeepAddresses)
	if err != nil {
		return "", err
	}
	return inst.Name, nil
}

func (h localHost) setState(ctx context.Context, name, action string) error {
	if action == "start" {
		return h.e.Start(ctx, name)
	}
	return h.e.Stop(ctx, name, false, engine.DefaultStopTimeout)
}

func (h localHost) delete(ctx context.Context, name string) error {
	return h.e.Delete(ctx, name, false)
}

func (h localHost) rename(ctx context.Context, name, to string) error {
	return h.e.Rename(ctx, name, to)
}

type remoteHost struct{ cl *client.Client }

func (h remoteHost) instance(ctx context.Context, name string) (*api.Instance, error) {
	return h.cl.InstanceBrief(ctx, name)
}

func (h remoteHost) poolDriver(ctx context.Context, pool string) (string, error) {
	p, err := h.cl.Pool(ctx, orDefault(pool))
	if err != nil {
		return "", err
	}
	return p.Driver, nil
}

func (h remoteHost) snapshots(ctx context.Context, name string) ([]api.InstanceSnapshot, error) {
	return h.cl.Snapshots(ctx, name)
}

func (h remoteHost) streamID(ctx context.Context, name, snap string) (string, error) {
	sn, err := h.cl.Snapshot(ctx, name, snap)
	if err != nil {
		return "", err
	}
	return sn.StreamID, nil
}

func (h remoteHost) export(ctx context.Context, name string, opts engine.ExportOptions) (io.ReadCloser, error) {
	if opts.Snapshot != "" {
		return nil, errkind.Wrap(errkind.Invalid, "a copy of one snapshot from a remote is not served yet: copy the instance")
	}
	return h.cl.ExportInstance(ctx, name, client.ExportOptions{Compression: opts.Compression, InstanceOnly: opts.InstanceOnly,
		Optimized: opts.Optimized, Refresh: opts.Refresh, Have: opts.Have, BaseStream: opts.BaseStream})
}

func (h remoteHost) receive(ctx context.Context, r io.Reader, opts client.ImportOptions) (string, error) {
	inst, err := h.cl.ImportInstance(ctx, r, opts)
	if err != nil {
		return "", err
	}
	return inst.Name, nil
}

func (h remoteHost) setState(ctx context.Context, name, action string) error {
	return awaited(ctx)(h.cl.UpdateInstanceState(ctx, name, api.InstanceStatePut{Action: action, Timeout: int(engine.DefaultStopTimeout.Seconds())}))
}

func (h remoteHost) delete(ctx context.Context, name string) error {
	return awaited(ctx)(h.cl.DeleteInstance(ctx, name))
}

func (h remoteHost) rename(ctx context.Context, name, to string) error {
	return awaited(ctx)(h.cl.RenameInstance(ctx, name, to))
}

func orDefault(pool string) string {
	if pool == "" {
		return engine.DefaultPool
	}
	return pool
}

// hostOf is the host that ref names, through this host's engine e when
// it is this one.
func hostOf(cfg *remote.Config, e *engine.Engine, ref remote.Ref) (host, error) {
	if ref.IsLocal() {
		return localHost{e}, nil
	}
	cl, err := cfg.Client(ref.Remote)
	if err != nil {
		return nil, err
	}
	return remoteHost{cl}, nil
}

// transfer copies or moves an instance from the host src names to the
// one dst names: the source's backup stream (the driver's streams when
// both pools have one driver, the portable form otherwise) flows into the
// target's import, through this client when neither is this host. The
// target applies it as it arrives, through its journal, so that a stream
// cut short leaves nothing there; a move deletes the source only once the
// target has the instance, whole.
func transfer(c *cli.Context, cfg *remote.Config, src, dst remote.Ref, move bool) error {
	ctx := c.Context
	name, snap, _ := strings.Cut(src.Name, "/")
	target := dst.Name
	if target == "" {
		target = name
	}
	refresh := c.Bool("refresh")
	switch {
	case name == "":
		return errkind.Wrap(errkind.Invalid, "name the instance to copy: REMOTE:NAME")
	case snap != "" && (refresh || move):
		return errkind.Wrap(errkind.Invalid, "%s: a refresh and a move take a whole instance", src.Name)
	case refresh && (c.IsSet("pool") || c.Bool("instance-only")):
		return errkind.Wrap(errkind.Invalid, "copy --refresh takes a whole instance, the target's pool, and its snapshots: leave out --pool and --instance-only")
	}
	var e *engine.Engine
	if src.IsLocal() || dst.IsLocal() {
		var err error
		if e, err = engine.Open(ctx, c.String("state-dir")); err != nil {
			return err
		}
		defer e.Close()
	}
	from, err := hostOf(cfg, e, src)
	if err != nil {
		return err
	}
	to, err := hostOf(cfg, e, dst)
	if err != nil {
		return err
	}
	if move && src.Remote == dst.Remote {
		return from.rename(ctx, name, target)
	}
	inst, err := from.instance(ctx, name)
	if err != nil {
		return err
	}
	if refresh {
		return refreshBetween(c, from, to, inst, target, dst.Remote)
	}
	wasRunning := inst.StatusCode == api.Running
	if move && wasRunning {
		// State is not carried: the instance stops here and starts there.
		if err := from.setState(ctx, name, "stop"); err != nil {
			return err
		}
	}
	pool := c.String("pool")
	// The sender's CPU, not the wire, is what a copy waits on.
	opts := engine.ExportOptions{Snapshot: snap, InstanceOnly: c.Bool("instance-only"), KeepShift: true, Compression: compression.ZstdFast}
	opts.Optimized, err = sameDriver(ctx, from, to, inst.Pool(), pool)
	if err != nil {
		return err
	}
	stream, err := from.export(ctx, name, opts)
	if err != nil {
		return err
	}
	defer stream.Close()
	got, err := to.receive(ctx, stream, client.ImportOptions{Name: target, Pool: pool, Copy: !move,
		KeepAddresses: move || c.Bool(keepAddressesFlag.Name)})
	if err != nil {
		if move && wasRunning {
			err = errors.Join(err, from.setState(ctx, name, "start"))
		}
		return fmt.Errorf("%s %s to %s: %w", map[bool]string{true: "move", false: "copy"}[move], src.Name, dst.Remote, err)
	}
	if !move {
		fmt.Printf("Instance %s copied to %s:%s\n", src.Name, dst.Remote, got)
		return nil
	}
	if err := from.delete(ctx, name); err != nil {
		return fmt.Errorf("instance %s is on %s now, but could not be deleted here: %w", got, dst.Remote, err)
	}
	if wasRunning {
		if err := to.setState(ctx, got, "start"); err != nil {
			return err
		}
	}
	fmt.Printf("Instance %s moved to %s:%s\n", name, dst.Remote, got)
	return nil
}

// sameDriver says whether the pool of the source, srcPool, and the
// target's pool (its default when empty) have one driver, whose own
// streams can then carry the copy.
func sameDriver(ctx context.Context, from, to host, srcPool, dstPool string) (bool, error) {
	a, err := from.poolDriver(ctx, srcPool)
	if err != nil {
		return false, err
	}
	b, err := to.poolDriver(ctx, dstPool)
	if errors.Is(err, errkind.NotFound) && dstPool == "" {
		return false, nil // the default pool, which the import makes
	}
	return a == b, err
}

// refreshBetween brings target on to, an earlier copy of instance inst
// on from, up to date: to says which snapshots it holds, and from sends
// the ones it lacks and its head, each as the difference from the state
// before, starting from the newest snapshot both hold: by the driver's
// incremental streams when both pools have one driver and to's copy of
// that snapshot was received from from's streams, by differences of the
// trees otherwise.
func refreshBetween(c *cli.Context, from, to host, inst *api.Instance, target, dstRemote string) error {
	ctx := c.Context
	snaps, err := to.snapshots(ctx, target)
	if err != nil {
		return err
	}
	dst, err := to.instance(ctx, target)
	if err != nil {
		return err
	}
	opts := engine.ExportOptions{Refresh: true, KeepShift: true, Compression: compression.ZstdFast}
	for _, s := range snaps {
		if s.UUID != "" {
			opts.Have = append(opts.Have, s.UUID)
		}
	}
	if opts.Optimized, err = sameDriver(ctx, from, to, inst.Pool(), dst.Pool()); err != nil {
		return err
	}
	base, err := sharedBase(ctx, from, inst.Name, snaps)
	if err != nil {
		return err
	}
	if opts.Optimized && base != "" {
		if opts.BaseStream, err = to.streamID(ctx, target, base); err != nil {
			return err
		}
	}
	stream, err := from.export(ctx, inst.Name, opts)
	if err != nil {
		return err
	}
	defer stream.Close()
	cr := &iopipe.Counter{R: stream}
	if _, err := to.receive(ctx, cr, client.ImportOptions{Name: target, Refresh: true, Force: c.Bool("force")}); err != nil {
		return fmt.Errorf("refresh %s:%s from %s: %w", dstRemote, target, inst.Name, err)
	}
	after, err := to.snapshots(ctx, target)
	if err != nil {
		return err
	}
	fmt.Printf("Instance %s:%s refreshed from %s: %d snapshots now (%d before), %d bytes sent\n", dstRemote, target, inst.Name, len(after), len(snaps), cr.N)
	return nil
}

// sharedBase is the name, among the target's snapshots, of the newest
// snapshot of instance name on from that the target holds too (by UUID):
// the one a refresh starts from; empty when they share none.
func sharedBase(ctx context.Context, from host, name string, target []api.InstanceSnapshot) (string, error) {
	src, err := from.snapshots(ctx, name)
	if err != nil {
		return "", err
	}
	for _, s := range slices.Backward(src) {
		if i := slices.IndexFunc(target, func(t api.InstanceSnapshot) bool { return t.UUID != "" && t.UUID == s.UUID }); i >= 0 {
			return target[i].Name, nil
		}
	}
	return "", nil
}
