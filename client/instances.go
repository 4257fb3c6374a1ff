package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/silo-dev/silo/api"
)

// Instances lists the instances with their state.
func (c *Client) Instances(ctx context.Context) ([]*api.Instance, error) {
	var out []*api.Instance
	_, err := c.get(ctx, api.Version+"/instances", recursion(2), &out)
	return out, err
}

// InstanceNames lists the paths of the instances.
func (c *Client) InstanceNames(ctx context.Context) ([]string, error) {
	var out []string
	_, err := c.get(ctx, api.Version+"/instances", nil, &out)
	return out, err
}

// Instance describes an instance, and returns its ETag for a write.
func (c *Client) Instance(ctx context.Context, name string) (*api.Instance, string, error) {
	var out api.Instance
	etag, err := c.get(ctx, api.Path("instances", name), nil, &out)
	return &out, etag, err
}

// InstanceBrief is Instance without the disk usage, which can take the
// server a walk of the instance's files.
func (c *Client) InstanceBrief(ctx context.Context, name string) (*api.Instance, error) {
	var out api.Instance
	_, err := c.get(ctx, api.Path("instances", name), recursion(0), &out)
	return &out, err
}

// CreateInstance makes an instance (and starts it, with req.Start).
func (c *Client) CreateInstance(ctx context.Context, req api.InstancesPost) (*Operation, error) {
	return c.async(ctx, http.MethodPost, api.Version+"/instances", req, nil)
}

// UpdateInstance replaces an instance's config, devices, profiles and
// ephemeral flag; with etag, only if the instance has not changed since.
func (c *Client) UpdateInstance(ctx context.Context, name string, req api.InstancePut, etag string) (*Operation, error) {
	return c.async(ctx, http.MethodPut, api.Path("instances", name), req, ifMatch(etag))
}

// PatchInstance changes what req sets and keeps the rest.
func (c *Client) PatchInstance(ctx context.Context, name string, req api.InstancePut, etag string) (*Operation, error) {
	return c.async(ctx, http.MethodPatch, api.Path("instances", name), req, ifMatch(etag))
}

// DeleteInstance deletes a stopped instance with its snapshots.
func (c *Client) DeleteInstance(ctx context.Context, name string) (*Operation, error) {
	return c.async(ctx, http.MethodDelete, api.Path("instances", name), nil, nil)
}

// RenameInstance renames an instance.
func (c *Client) RenameInstance(ctx context.Context, name, newName string) (*Operation, error) {
	return c.async(ctx, http.MethodPost, api.Path("instances", name), api.InstancePost{Name: newName}, nil)
}

// InstanceState is what an instance is doing now.
func (c *Client) InstanceState(ctx context.Context, name string) (*api.InstanceState, error) {
	var out api.InstanceState
	_, err := c.get(ctx, api.Path("instances", name)+"/state", nil, &out)
	return &out, err
}

// UpdateInstanceState starts, stops or restarts an instance.
func (c *Client) UpdateInstanceState(ctx context.Context, name string, req api.InstanceStatePut) (*Operation, error) {
	return c.async(ctx, http.MethodPut, api.Path("instances", name)+"/state", req, nil)
}

// Snapshots lists an instance's snapshots, oldest first.
func (c *Client) Snapshots(ctx context.Context, name string) ([]api.InstanceSnapshot, error) {
	var out []api.InstanceSnapshot
	_, err := c.get(ctx, api.Path("instances", name)+"/snapshots", recursion(1), &out)
	return out, err
}

// Snapshot describes one snapshot of an instance.
func (c *Client) Snapshot(ctx context.Context, name, snap string) (*api.InstanceSnapshot, error) {
	var out api.InstanceSnapshot
	_, err := c.get(ctx, snapshotPath(name, snap), nil, &out)
	return &out, err
}

// CreateSnapshot snapshots an instance; with no name, by the instance's
// snapshots.pattern.
func (c *Client) CreateSnapshot(ctx context.Context, name string, req api.InstanceSnapshotsPost) (*Operation, error) {
	return c.async(ctx, http.MethodPost, api.Path("instances", name)+"/snapshots", req, nil)
}

// DeleteSnapshot deletes a snapshot.
func (c *Client) DeleteSnapshot(ctx context.Context, name, snap string) (*Operation, error) {
	return c.async(ctx, http.MethodDelete, snapshotPath(name, snap), nil, nil)
}

// RestoreSnapshot brings an instance back to a snapshot, keeping the
// others; a running instance is stopped and started again.
func (c *Client) RestoreSnapshot(ctx context.Context, name, snap string) (*Operation, error) {
	return c.async(ctx, http.MethodPut, api.Path("instances", name), api.InstancePut{Restore: snap}, nil)
}

func snapshotPath(name, snap string) string {
	return api.Path("instances", name) + "/snapshots/" + url.PathEscape(snap)
}

func ifMatch(etag string) http.Header {
	if etag == "" {
		return nil
	}
	return http.Header{"If-Match": {`"` + etag + `"`}}
}
