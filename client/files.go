package client

import (
	"context"
	"io"
	"net/http"
	"os"
	"strconv"

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
