package client

import (
	"context"
	"fmt"
	"net/http"

	"github.com/silo-dev/silo/api"
)

// Aliases lists the image aliases, by name.
func (c *Client) Aliases(ctx context.Context) ([]api.ImageAliasesEntry, error) {
	return listOf[api.ImageAliasesEntry](ctx, c, api.Version+"/images/aliases")
}

// Alias describes an alias and the image it names.
func (c *Client) Alias(ctx context.Context, name string) (*api.ImageAliasesEntry, error) {
	return objectOf[api.ImageAliasesEntry](ctx, c, api.Path("images/aliases", name))
}

// CreateAlias gives image target (a fingerprint, a unique prefix of one,
// or an alias) the alias name.
func (c *Client) CreateAlias(ctx context.Context, name, target string) error {
	return c.write(ctx, http.MethodPost, api.Version+"/images/aliases", api.ImageAliasesPost{Name: name, Target: target}, nil)
}

// RenameAlias renames an alias; the image stays.
func (c *Client) RenameAlias(ctx context.Context, name, newName string) error {
	return c.write(ctx, http.MethodPost, api.Path("images/aliases", name), api.ImageAliasesEntryPost{Name: newName}, nil)
}

// DeleteAlias removes an alias; the image stays.
func (c *Client) DeleteAlias(ctx context.Context, name string) error {
	return c.write(ctx, http.MethodDelete, api.Path("images/aliases", name), nil, nil)
}

// Publish makes an image of an instance or of one of its snapshots, and
// waits for it: it returns the new image's fingerprint and size.
func (c *Client) Publish(ctx context.Context, req api.ImagesPost) (string, int64, error) {
	op, err := c.async(ctx, http.MethodPost, api.Version+"/images", req, nil)
	if err == nil {
		err = op.Wait(ctx)
	}
	if err != nil {
		return "", 0, err
	}
	fp, _ := op.Metadata["fingerprint"].(string)
	size, _ := op.Metadata["size"].(float64)
	if fp == "" {
		return "", 0, fmt.Errorf("publish %s: the operation names no image", req.Source.Name)
	}
	return fp, int64(size), nil
}
