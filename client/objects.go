package client

import (
	"context"
	"net/http"

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

// Networks lists the networks.
func (c *Client) Networks(ctx context.Context) ([]*api.Network, error) {
	return listOf[*api.Network](ctx, c, api.Version+"/networks")
}

// Network describes a network, and returns its ETag for a write.
func (c *Client) Network(ctx context.Context, name string) (*api.Network, string, error) {
	var out api.Network
	etag, err := c.get(ctx, api.Path("networks", name), nil, &out)
	return &out, etag, err
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

// Profile describes a profile, and returns its ETag for a write.
func (c *Client) Profile(ctx context.Context, name string) (*api.Profile, string, error) {
	var out api.Profile
	etag, err := c.get(ctx, api.Path("profiles", name), nil, &out)
	return &out, etag, err
}

// CreateProfile makes a profile.
func (c *Client) CreateProfile(ctx context.Context, req api.ProfilesPost) error {
	return c.write(ctx, http.MethodPost, api.Version+"/profiles", req, nil)
}

// UpdateProfile replaces a profile's description, config and devices;
// with etag, only if the profile has not changed since.
func (c *Client) UpdateProfile(ctx context.Context, name string, req api.ProfilePut, etag string) error {
	return c.write(ctx, http.MethodPut, api.Path("profiles", name), req, ifMatch(etag))
}

// PatchProfile changes what req sets and keeps the rest.
func (c *Client) PatchProfile(ctx context.Context, name string, req api.ProfilePut, etag string) error {
	return c.write(ctx, http.MethodPatch, api.Path("profiles", name), req, ifMatch(etag))
}

// RenameProfile renames a profile, in every instance that applies it.
func (c *Client) RenameProfile(ctx context.Context, name, newName string) error {
	return c.write(ctx, http.MethodPost, api.Path("profiles", name), api.ProfilePost{Name: newName}, nil)
}

// DeleteProfile deletes a profile no instance applies.
func (c *Client) DeleteProfile(ctx context.Context, name string) error {
	return c.write(ctx, http.MethodDelete, api.Path("profiles", name), nil, nil)
}

// DeleteImage deletes an image no instance uses.
func (c *Client) DeleteImage(ctx context.Context, ref string) (*Operation, error) {
	return c.async(ctx, http.MethodDelete, api.Path("images", ref), nil, nil)
}

// CreateNetwork makes a managed bridge.
func (c *Client) CreateNetwork(ctx context.Context, req api.NetworksPost) error {
	return c.write(ctx, http.MethodPost, api.Version+"/networks", req, nil)
}

// UpdateNetwork replaces a network's config; with etag, only if the
// network has not changed since.
func (c *Client) UpdateNetwork(ctx context.Context, name string, req api.NetworkPut, etag string) error {
	return c.write(ctx, http.MethodPut, api.Path("networks", name), req, ifMatch(etag))
}

// PatchNetwork sets the config keys req gives, and removes those it gives
// empty.
func (c *Client) PatchNetwork(ctx context.Context, name string, req api.NetworkPut, etag string) error {
	return c.write(ctx, http.MethodPatch, api.Path("networks", name), req, ifMatch(etag))
}

// DeleteNetwork deletes a network no nic is on.
func (c *Client) DeleteNetwork(ctx context.Context, name string) error {
	return c.write(ctx, http.MethodDelete, api.Path("networks", name), nil, nil)
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
