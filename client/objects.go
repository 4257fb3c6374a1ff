package client

import (
	"context"

	"github.com/silo-dev/silo/api"
)

// Images lists the images, oldest first.
func (c *Client) Images(ctx context.Context) ([]*api.Image, error) {
	return listOf[*api.Image](ctx, c, api.Version+"/images")
}

// Image finds an image by alias, fingerprint or a unique prefix of one.
func (c *Client) Image(ctx context.Context, ref string) (*api.Image, error) {
	return objectOf[api.Image](ctx, c, api.Path("images", ref))
}

// Pools lists the storage pools.
func (c *Client) Pools(ctx context.Context) ([]*api.StoragePool, error) {
	return listOf[*api.StoragePool](ctx, c, api.Version+"/storage-pools")
}

// Pool describes a storage pool.
func (c *Client) Pool(ctx context.Context, name string) (*api.StoragePool, error) {
	return objectOf[api.StoragePool](ctx, c, api.Path("storage-pools", name))
}

// Volumes lists a pool's custom volumes.
func (c *Client) Volumes(ctx context.Context, pool string) ([]*api.StorageVolume, error) {
	return listOf[*api.StorageVolume](ctx, c, api.Path("storage-pools", pool)+"/volumes")
}

// Volume describes a custom volume, with what it holds.
func (c *Client) Volume(ctx context.Context, pool, name string) (*api.StorageVolume, error) {
	return objectOf[api.StorageVolume](ctx, c, api.VolumePath(pool, name))
}

// Networks lists the networks.
func (c *Client) Networks(ctx context.Context) ([]*api.Network, error) {
	return listOf[*api.Network](ctx, c, api.Version+"/networks")
}

// Network describes a network.
func (c *Client) Network(ctx context.Context, name string) (*api.Network, error) {
	return objectOf[api.Network](ctx, c, api.Path("networks", name))
}

// NetworkLeases lists the addresses a network's nics hold.
func (c *Client) NetworkLeases(ctx context.Context, name string) ([]api.NetworkLease, error) {
	var out []api.NetworkLease
	_, err := c.get(ctx, api.Path("networks", name)+"/leases", nil, &out)
	return out, err
}

// Profiles lists the profiles.
func (c *Client) Profiles(ctx context.Context) ([]*api.Profile, error) {
	return listOf[*api.Profile](ctx, c, api.Version+"/profiles")
}

// Profile describes a profile.
func (c *Client) Profile(ctx context.Context, name string) (*api.Profile, error) {
	return objectOf[api.Profile](ctx, c, api.Path("profiles", name))
}

func listOf[T any](ctx context.Context, c *Client, path string) ([]T, error) {
	var out []T
	_, err := c.get(ctx, path, recursion(1), &out)
	return out, err
}

func objectOf[T any](ctx context.Context, c *Client, path string) (*T, error) {
	var out T
	if _, err := c.get(ctx, path, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
