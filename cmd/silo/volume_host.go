package main

import (
	"context"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/client"
	"github.com/silo-dev/silo/engine"
)

// volumeHost is where a volume command acts: this host's engine,
// directly, or a remote through its client.
type volumeHost interface {
	volumes(ctx context.Context, pool string) ([]*api.StorageVolume, error)
	volume(ctx context.Context, pool, name string) (*api.StorageVolume, error)
	create(ctx context.Context, pool, name string, cfg map[string]string) error
	update(ctx context.Context, pool, name string, set map[string]string, unset []string) error
	rename(ctx context.Context, pool, name, newName string) error
	remove(ctx context.Context, pool, name string) error
	// snapshot takes a snapshot with snapshotFlags, and returns its name
	// where it is known.
	snapshot(c *cli.Context, pool, name, snap string) (string, error)
	snapshots(ctx context.Context, pool, name string) ([]api.StorageVolumeSnapshot, error)
	restore(ctx context.Context, pool, name, snap string) error
	removeSnapshot(ctx context.Context, pool, name, snap string) error
	// export writes the backup stream of volume name to w.
	export(ctx context.Context, pool, name string, w io.Writer, opts engine.ExportOptions) error
	// receive makes volume name from the backup stream r.
	receive(ctx context.Context, r io.Reader, pool, name string) (*api.StorageVolume, error)
}

type localVolumes struct{ e *engine.Engine }

func (l localVolumes) export(ctx context.Context, pool, name string, w io.Writer, opts engine.ExportOptions) error {
	return l.e.ExportVolume(ctx, pool, name, w, opts)
}

func (l localVolumes) receive(ctx context.Context, r io.Reader, pool, name string) (*api.StorageVolume, error) {
	if _, err := l.e.ImportVolume(ctx, r, pool, name); err != nil {
		return nil, err
	}
	return l.e.Volume(ctx, pool, name)
}

func (l localVolumes) volumes(ctx context.Context, pool string) ([]*api.StorageVolume, error) {
	return l.e.Volumes(ctx, pool)
}

func (l localVolumes) volume(ctx context.Context, pool, name string) (*api.StorageVolume, error) {
	return l.e.Volume(ctx, pool, name)
}

func (l localVolumes) create(ctx context.Context, pool, name string, cfg map[string]string) error {
	_, err := l.e.CreateVolume(ctx, pool, name, cfg)
	return err
}

func (l localVolumes) update(ctx context.Context, pool, name string, set map[string]string, unset []string) error {
	return l.e.UpdateVolume(ctx, pool, name, set, unset)
}

func (l localVolumes) rename(ctx context.Context, pool, name, newName string) error {
	return l.e.RenameVolume(ctx, pool, name, newName)
}

func (l localVolumes) remove(ctx context.Context, pool, name string) error {
	return l.e.DeleteVolume(ctx, pool, name)
}

func (l localVolumes) snapshot(c *cli.Context, pool, name, snap string) (string, error) {
	s, err := l.e.CreateVolumeSnapshot(c.Context, pool, name, snapshotOptions(c, snap))
	if err != nil {
		return "", err
	}
	return s.Name, nil
}

func (l localVolumes) snapshots(ctx context.Context, pool, name string) ([]api.StorageVolumeSnapshot, error) {
	return l.e.VolumeSnapshots(ctx, pool, name)
}

func (l localVolumes) restore(ctx context.Context, pool, name, snap string) error {
	return l.e.RestoreVolumeSnapshot(ctx, pool, name, snap)
}

func (l localVolumes) removeSnapshot(ctx context.Context, pool, name, snap string) error {
	return l.e.DeleteVolumeSnapshot(ctx, pool, name, snap)
}

type remoteVolumes struct{ cl *client.Client }

// volumes lists the volumes of pool, or of every pool when it is empty.
func (r remoteVolumes) volumes(ctx context.Context, pool string) ([]*api.StorageVolume, error) {
	if pool == "" {
		return r.cl.AllVolumes(ctx)
	}
	return r.cl.Volumes(ctx, pool)
}

func (r remoteVolumes) volume(ctx context.Context, pool, name string) (*api.StorageVolume, error) {
	v, _, err := r.cl.Volume(ctx, pool, name)
	return v, err
}

func (r remoteVolumes) create(ctx context.Context, pool, name string, cfg map[string]string) error {
	return awaited(ctx)(r.cl.CreateVolume(ctx, pool, api.StorageVolumesPost{Name: name, Config: cfg}))
}

// update is a PATCH: the keys unset go as "", which the server removes
// as volume unset does here.
func (r remoteVolumes) update(ctx context.Context, pool, name string, set map[string]string, unset []string) error {
	return r.cl.PatchVolume(ctx, pool, name, api.StorageVolumePut{Config: patchConfig(set, unset)}, "")
}

func (r remoteVolumes) rename(ctx context.Context, pool, name, newName string) error {
	return r.cl.RenameVolume(ctx, pool, name, newName)
}

func (r remoteVolumes) remove(ctx context.Context, pool, name string) error {
	return awaited(ctx)(r.cl.DeleteVolume(ctx, pool, name))
}

func (r remoteVolumes) snapshot(c *cli.Context, pool, name, snap string) (string, error) {
	req, err := snapshotRequest(c, snap)
	if err != nil {
		return "", err
	}
	return snap, awaited(c.Context)(r.cl.CreateVolumeSnapshot(c.Context, pool, name, api.StorageVolumeSnapshotsPost(req)))
}

func (r remoteVolumes) snapshots(ctx context.Context, pool, name string) ([]api.StorageVolumeSnapshot, error) {
	return r.cl.VolumeSnapshots(ctx, pool, name)
}

func (r remoteVolumes) restore(ctx context.Context, pool, name, snap string) error {
	return awaited(ctx)(r.cl.RestoreVolumeSnapshot(ctx, pool, name, snap))
}

func (r remoteVolumes) removeSnapshot(ctx context.Context, pool, name, snap string) error {
	return awaited(ctx)(r.cl.DeleteVolumeSnapshot(ctx, pool, name, snap))
}

func (r remoteVolumes) export(ctx context.Context, pool, name string, w io.Writer, opts engine.ExportOptions) error {
	rc, err := r.cl.ExportVolume(ctx, pool, name, client.ExportOptions{Compression: opts.Compression, InstanceOnly: opts.InstanceOnly, Optimized: opts.Optimized})
	if err != nil {
		return err
	}
	defer rc.Close()
	_, err = io.Copy(w, rc)
	return err
}

func (r remoteVolumes) receive(ctx context.Context, rd io.Reader, pool, name string) (*api.StorageVolume, error) {
	return r.cl.ImportVolume(ctx, rd, pool, name)
}
