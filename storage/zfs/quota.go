package zfs

import (
	"context"
	"strconv"
	"strings"

	"github.com/silo-dev/silo/storage"
)

// SetQuota sets refquota: it caps what the head refers to, and leaves out
// its snapshots, which a user cannot write to.
func (d *driver) SetQuota(ctx context.Context, vol string, bytes int64) error {
	ref := storage.Ref{Volume: vol}
	if err := storage.CheckRef(ref, false); err != nil {
		return err
	}
	v := "none"
	if bytes > 0 {
		v = strconv.FormatInt(bytes, 10)
	}
	if _, err := zfs(ctx, "set", "refquota="+v, d.dataset(vol)); err != nil {
		return notFound(err, ref)
	}
	return nil
}

func (d *driver) Quota(ctx context.Context, vol string) (int64, error) {
	ref := storage.Ref{Volume: vol}
	if err := storage.CheckRef(ref, false); err != nil {
		return 0, err
	}
	out, err := zfs(ctx, "get", "-Hp", "-o", "value", "refquota", d.dataset(vol))
	if err != nil {
		return 0, notFound(err, ref)
	}
	v := strings.TrimSpace(out)
	if v == "none" || v == "-" {
		return 0, nil
	}
	return strconv.ParseInt(v, 10, 64)
}
