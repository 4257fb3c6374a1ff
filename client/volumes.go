package client

import (
	"context"
	"io"
	"net/http"

	"github.com/silo-dev/silo/api"
)

// AllVolumes lists the custom volumes of every pool.
func (c *Client) AllVolumes(ctx context.Context) ([]*api.StorageVolume, error) {
	return listOf[*api.StorageVolume](ctx, c, api.Version+"/storage-volumes")
}

// Volumes lists a pool's custom volumes.
func (c *Client) Volumes(ctx context.Context, pool string) ([]*api.StorageVolume, error) {
	return listOf[*api.StorageVolume](ctx, c, api.Path("storage-pools", pool)+"/volumes")
}

// Volume describes a custom volume, with what it holds, and returns its
// ETag for a write.
func (c *Client) Volume(ctx context.Context, pool, name string) (*api.StorageVolume, string, error) {
	var out api.StorageVolume
	etag, err := c.get(ctx, api.VolumePath(pool, name), nil, &out)
	return &out, etag, err
}

// CreateVolume makes a custom volume on pool.
func (c *Client) CreateVolume(ctx context.Context, pool string, req api.StorageVolumesPost) (*Operation, error) {
	return c.async(ctx, http.MethodPost, api.Path("storage-pools", pool)+"/volumes/"+api.VolumeTypeCustom, req, nil)
}

// UpdateVolume replaces a custom volume's description and config (a new
// size caps it at once); with etag, only if the volume has not changed
// since.
func (c *Client) UpdateVolume(ctx context.Context, pool, name string, req api.StorageVolumePut, etag string) error {
	return c.write(ctx, http.MethodPut, api.VolumePath(pool, name), req, ifMatch(etag))
}

// PatchVolume sets what req gives, and removes the config keys it gives
// empty (each of which the volume must have).
func (c *Client) PatchVolume(ctx context.Context, pool, name string, req api.StorageVolumePut, etag string) error {
	return c.write(ctx, http.MethodPatch, api.VolumePath(pool, name), req, ifMatch(etag))
}

// RenameVolume renames a custom volume nothing attaches, within its pool.
func (c *Client) RenameVolume(ctx context.Context, pool, name, newName string) error {
	return c.write(ctx, http.MethodPost, api.VolumePath(pool, name), api.StorageVolumePost{Name: newName}, nil)
}

// DeleteVolume deletes a custom volume nothing attaches, with its
// snapshots.
func (c *Client) DeleteVolume(ctx context.Context, pool, name string) (*Operation, error) {
	return c.async(ctx, http.MethodDelete, api.VolumePath(pool, name), nil, nil)
}

// VolumeSnapshots lists a custom volume's snapshots, oldest first.
func (c *Client) VolumeSnapshots(ctx context.Context, pool, name string) ([]api.StorageVolumeSnapshot, error) {
	return listOf[api.StorageVolumeSnapshot](ctx, c, api.VolumePath(pool, name)+"/snapshots")
}

// VolumeSnapshot describes one snapshot of a custom volume.
func (c *Client) VolumeSnapshot(ctx context.Context, pool, name, snap string) (*api.StorageVolumeSnapshot, error) {
	return objectOf[api.StorageVolumeSnapshot](ctx, c, api.VolumeSnapshotPath(pool, name, snap))
}

// CreateVolumeSnapshot snapshots a custom volume; with no name, by its
// snapshots.pattern.
func (c *Client) CreateVolumeSnapshot(ctx context.Context, pool, name string, req api.StorageVolumeSnapshotsPost) (*Operation, error) {
	return c.async(ctx, http.MethodPost, api.VolumePath(pool, name)+"/snapshots", req, nil)
}

// DeleteVolumeSnapshot deletes a snapshot of a custom volume.
func (c *Client) DeleteVolumeSnapshot(ctx context.Context, pool, name, snap string) (*Operation, error) {
	return c.async(ctx, http.MethodDelete, api.VolumeSnapshotPath(pool, name, snap), nil, nil)
}

// RestoreVolumeSnapshot brings a custom volume back to one of its
// snapshots, keeping the others, as LXD's PUT with restore.
func (c *Client) RestoreVolumeSnapshot(ctx context.Context, pool, name, snap string) (*Operation, error) {
	return c.async(ctx, http.MethodPut, api.VolumePath(pool, name), api.StorageVolumePut{Restore: snap}, nil)
}

// ExportVolume streams the backup of custom volume name of pool, as silo
// volume export writes it (InstanceOnly leaves the snapshots out); close
// what it returns. A stream the server cut short ends in an error.
func (c *Client) ExportVolume(ctx context.Context, pool, name string, opts ExportOptions) (io.ReadCloser, error) {
	q := query{}
	if opts.Compression != "" {
		q.Set("compression", opts.Compression)
	}
	for k, on := range map[string]bool{"volume-only": opts.InstanceOnly, "optimized": opts.Optimized} {
		if on {
			q.Set(k, "1")
		}
	}
	return c.download(ctx, api.VolumePath(pool, name)+"/export", q)
}

// ImportVolume uploads the backup stream r, which the server applies as
// it arrives, as custom volume name of pool, and returns the volume.
func (c *Client) ImportVolume(ctx context.Context, r io.Reader, pool, name string) (*api.StorageVolume, error) {
	h := http.Header{"Content-Type": {"application/octet-stream"}, "X-LXD-name": {name}}
	var v api.StorageVolume
	_, err := c.upload(ctx, api.Path("storage-pools", pool)+"/volumes/custom", r, h, &v)
	return &v, err
}
