package client

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/silo-dev/silo/api"
)

// ExportOptions say which stream ExportInstance asks for.
type ExportOptions struct {
	Compression  string // zstd when empty
	InstanceOnly bool   // leave the snapshots out
	// Optimized asks for the driver's streams, with the files as they
	// are on disk, for a pool of the same driver.
	Optimized bool
	// Refresh asks for a refresh stream, for a receiver that holds the
	// snapshots whose UUIDs Have lists; with Optimized, by the driver's
	// streams when the receiver's copy of the snapshot the refresh starts
	// from has the stream ID BaseStream.
	Refresh    bool
	Have       []string
	BaseStream string
}

// ExportInstance streams instance name's backup; close what it returns.
// A stream the server cut short ends in an error, not in EOF.
func (c *Client) ExportInstance(ctx context.Context, name string, opts ExportOptions) (io.ReadCloser, error) {
	q := query{}
	if opts.Compression != "" {
		q.Set("compression", opts.Compression)
	}
	for k, on := range map[string]bool{"instance-only": opts.InstanceOnly, "optimized": opts.Optimized, "refresh": opts.Refresh} {
		if on {
			q.Set(k, "1")
		}
	}
	if len(opts.Have) > 0 {
		q.Set("have", strings.Join(opts.Have, ","))
	}
	if opts.BaseStream != "" {
		q.Set("base-stream", opts.BaseStream)
	}
	return c.download(ctx, api.Path("instances", name)+"/export", q)
}

// ImportOptions say how ImportInstance takes a backup stream.
type ImportOptions struct {
	Name string // the instance's; the backup's when empty
	Pool string // the server's default pool when empty
	// Copy makes the instance a copy, created now with a copy's identity.
	Copy          bool
	KeepAddresses bool
	// Refresh brings instance Name up to date from a refresh stream;
	// Force replaces its snapshots that diverged.
	Refresh, Force bool
}

// ImportInstance uploads the backup stream r, which the server applies as
// it arrives, and returns the instance made or refreshed.
func (c *Client) ImportInstance(ctx context.Context, r io.Reader, opts ImportOptions) (*api.Instance, error) {
	h := http.Header{"Content-Type": {"application/octet-stream"}}
	if opts.Name != "" {
		h.Set("X-LXD-name", opts.Name)
	}
	if opts.Pool != "" {
		h.Set("X-LXD-pool", opts.Pool)
	}
	for k, on := range map[string]bool{"X-Silo-Copy": opts.Copy, "X-Silo-Keep-Addresses": opts.KeepAddresses,
		"X-Silo-Refresh": opts.Refresh, "X-Silo-Force": opts.Force} {
		if on {
			h.Set(k, "1")
		}
	}
	var inst api.Instance
	_, err := c.upload(ctx, api.Version+"/instances", r, h, &inst)
	return &inst, err
}

// Backups lists the backups the server keeps of an instance, oldest
// first.
func (c *Client) Backups(ctx context.Context, name string) ([]api.InstanceBackup, error) {
	var out []api.InstanceBackup
	_, err := c.get(ctx, api.Path("instances", name)+"/backups", recursion(1), &out)
	return out, err
}

// Backup describes one backup of an instance.
func (c *Client) Backup(ctx context.Context, name, backup string) (*api.InstanceBackup, error) {
	var out api.InstanceBackup
	_, err := c.get(ctx, backupPath(name, backup), nil, &out)
	return &out, err
}

// CreateBackup has the server write a backup of an instance, which it
// keeps until it is deleted or expires; the operation's resources name
// it.
func (c *Client) CreateBackup(ctx context.Context, name string, req api.InstanceBackupsPost) (*Operation, error) {
	return c.async(ctx, http.MethodPost, api.Path("instances", name)+"/backups", req, nil)
}

// RenameBackup renames a backup.
func (c *Client) RenameBackup(ctx context.Context, name, backup, to string) (*Operation, error) {
	return c.async(ctx, http.MethodPost, backupPath(name, backup), api.InstanceBackupPost{Name: to}, nil)
}

// DeleteBackup deletes a backup and its file.
func (c *Client) DeleteBackup(ctx context.Context, name, backup string) (*Operation, error) {
	return c.async(ctx, http.MethodDelete, backupPath(name, backup), nil, nil)
}

// ExportBackup downloads a backup's file; close what it returns.
func (c *Client) ExportBackup(ctx context.Context, name, backup string) (io.ReadCloser, error) {
	return c.download(ctx, backupPath(name, backup)+"/export", nil)
}

func backupPath(name, backup string) string {
	return api.Path("instances", name) + "/backups/" + url.PathEscape(backup)
}
