package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/internal/store"
	"github.com/silo-dev/silo/internal/units"
	"github.com/silo-dev/silo/storage"
)

// rootSize is the cap that the root disk among devs asks for: 0 for none.
func rootSize(devs store.Devices) int64 {
	_, d := rootDisk(devs)
	n, _ := units.ParseSize(d["size"]) // checked with the device
	return n
}

// setRootQuota caps the root volume of inst at bytes (0: no cap) on
// driver d, which must be able to. A cap below what the volume already
// holds is refused when check is set.
func setRootQuota(ctx context.Context, inst *store.Instance, d storage.Volumes, bytes int64, check bool) error {
	return setQuota(ctx, d, rootWhat(inst), inst.Pool, inst.Volume, bytes, check)
}

// rootWhat names the root volume of inst in messages.
func rootWhat(inst *store.Instance) string { return "instance " + inst.Name + "'s root disk" }

// setQuota caps volume vol on pool, which messages call what, as
// setRootQuota does.
func setQuota(ctx context.Context, d storage.Volumes, what, pool, vol string, bytes int64, check bool) error {
	q, ok := d.(storage.Quota)
	if !ok {
		if bytes == 0 {
			return nil
		}
		return errkind.Wrap(errkind.Invalid, "%s: pool %s cannot cap the size of a volume", what, pool)
	}
	if check && bytes > 0 {
		used, err := d.Usage(ctx, storage.Ref{Volume: vol})
		if err != nil {
			return fmt.Errorf("usage of %s: %w", what, err)
		}
		if used > bytes {
			return errkind.Wrap(errkind.Invalid, "%s: size=%s is less than the %s it already holds", what, units.FormatSize(bytes), units.FormatSize(used))
		}
	}
	if err := q.SetQuota(ctx, vol, bytes); err != nil {
		return fmt.Errorf("%s: size=%s: pool %s: %w", what, units.FormatSize(bytes), pool, err)
	}
	return nil
}

// fitQuota gives the root volume of inst (expanded), about to start, the
// cap its root disk asks for: a volume made by a restore, copy or import
// has none yet.
func fitQuota(ctx context.Context, inst *store.Instance, d storage.Volumes) error {
	want := rootSize(inst.Devices)
	if want == 0 {
		return nil
	}
	return fitCap(ctx, d, rootWhat(inst), inst.Pool, inst.Volume, want)
}

// fitCap gives volume vol the cap want, unless it has it already: ZFS
// refuses to set again a cap that the volume has filled.
func fitCap(ctx context.Context, d storage.Volumes, what, pool, vol string, want int64) error {
	if q, ok := d.(storage.Quota); ok {
		if have, err := q.Quota(ctx, vol); err == nil && have == want {
			return nil
		}
	}
	return setQuota(ctx, d, what, pool, vol, want, false)
}

// refitQuotas gives the root volumes of the named instances the caps
// their records now say: after an operation that changed them was undone.
func (e *Engine) refitQuotas(ctx context.Context, names []string) error {
	var errs []error
	for _, name := range names {
		var inst *store.Instance
		err := e.store.View(func(tx *store.Tx) error {
			raw, err := tx.Instance(name)
			if err == nil {
				inst, err = expanded(tx, raw)
			}
			return err
		})
		if errors.Is(err, errkind.NotFound) {
			continue
		}
		if err == nil {
			var d storage.Driver
			if d, _, err = e.driver(ctx, inst.Pool); err == nil {
				err = fitCap(ctx, d, rootWhat(inst), inst.Pool, inst.Volume, rootSize(inst.Devices))
			}
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
