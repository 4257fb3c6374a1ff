package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/silo-dev/silo/api"
)

// FileInfo is the owner and mode of a file in an instance.
type FileInfo struct {
	UID, GID int
	Mode     os.FileMode // permissions only
}

// PullFile reads the file path of instance name; close what it returns.
func (c *Client) PullFile(ctx context.Context, name, path string) (io.ReadCloser, *FileInfo, error) {
	resp, err := c.send(ctx, http.MethodGet, api.Path("instances", name)+"/files", query{"path": {path}}, nil, nil)
	if err != nil {
		return nil, nil, err
	}
	info := &FileInfo{}
	info.UID, _ = strconv.Atoi(resp.Header.Get("X-LXD-uid"))
	info.GID, _ = strconv.Atoi(resp.Header.Get("X-LXD-gid"))
	mode, _ := strconv.ParseUint(resp.Header.Get("X-LXD-mode"), 8, 32)
	info.Mode = os.FileMode(mode & 0o777)
	return resp.Body, info, nil
}

// PushFile writes r as the file path of instance name, replacing it whole,
// with mode (an octal number as people write it: 0644, 4755) and owner.
func (c *Client) PushFile(ctx context.Context, name, path string, r io.Reader, mode uint32, uid, gid int) error {
	h := http.Header{"X-LXD-type": {"file"}, "X-LXD-write": {"overwrite"}, "Content-Type": {"application/octet-stream"},
		"X-LXD-mode": {"0" + strconv.FormatUint(uint64(mode), 8)}, "X-LXD-uid": {strconv.Itoa(uid)}, "X-LXD-gid": {strconv.Itoa(gid)}}
	resp, err := c.send(ctx, http.MethodPost, api.Path("instances", name)+"/files", query{"path": {path}}, r, h)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

// ImportImage uploads an image file (a root filesystem tarball or an LXD
// unified image) with aliases; with fingerprint, the server refuses any
// other image. existed says the same file was imported before: nothing
// changed.
func (c *Client) ImportImage(ctx context.Context, r io.Reader, fingerprint string, aliases []string) (img *api.Image, existed bool, err error) {
	h := http.Header{"Content-Type": {"application/octet-stream"}, "X-Silo-Aliases": {strings.Join(aliases, ",")}}
	if fingerprint != "" {
		h.Set("X-LXD-fingerprint", fingerprint)
	}
	img = &api.Image{}
	code, err := c.upload(ctx, api.Version+"/images", r, h, img)
	return img, code == http.StatusOK, err
}

// upload posts the stream r with headers h to path, decodes the object
// answered into out, and returns the answer's status.
func (c *Client) upload(ctx context.Context, path string, r io.Reader, h http.Header, out any) (int, error) {
	resp, err := c.send(ctx, http.MethodPost, path, nil, r, h)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&api.Response{Metadata: out}); err != nil {
		return 0, fmt.Errorf("upload to %s: unreadable answer: %w", path, err)
	}
	return resp.StatusCode, nil
}

// ExportImage streams image ref as an LXD unified image, compressed as
// named (zstd when empty); close what it returns. A stream the server cut
// short ends in an error, not in EOF.
func (c *Client) ExportImage(ctx context.Context, ref, compression string) (io.ReadCloser, error) {
	q := query{}
	if compression != "" {
		q.Set("compression", compression)
	}
	return c.download(ctx, api.Path("images", ref)+"/export", q)
}

// download streams what path answers; close what it returns.
func (c *Client) download(ctx context.Context, path string, q query) (io.ReadCloser, error) {
	resp, err := c.send(ctx, http.MethodGet, path, q, nil, nil)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// Metrics streams the server's /1.0/metrics, Prometheus's text format;
// close what it returns.
func (c *Client) Metrics(ctx context.Context) (io.ReadCloser, error) {
	return c.download(ctx, "/1.0/metrics", nil)
}
