package client

import (
	"context"
	"io"
	"net/http"
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
	return &inst, c.upload(ctx, api.Version+"/instances", r, h, &inst)
}
