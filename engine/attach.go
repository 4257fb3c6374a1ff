package engine

import (
	"context"
	"strings"

	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/internal/store"
)

// AttachVolume gives instance inst disk device dev (the volume's name
// when empty) that mounts custom volume vol of pool at path, as
// `config device add` would: at once if it runs.
func (e *Engine) AttachVolume(ctx context.Context, pool, vol, inst, path, dev string) error {
	if dev == "" {
		dev = vol
	}
	d, err := ParseDevice(dev, DeviceDisk, []string{"pool=" + pool, "source=" + vol, "path=" + path})
	if err != nil {
		return err
	}
	return e.AddDevice(ctx, Owner{Name: inst}, dev, d)
}

// DetachVolume removes from instance inst its own disk device that
// mounts custom volume vol of pool: at once if it runs.
func (e *Engine) DetachVolume(ctx context.Context, pool, vol, inst string) error {
	o := Owner{Name: inst}
	return e.editDevices(ctx, o, func(own, inherited store.Devices) error {
		switch found := volumeDisks(own, pool, vol); len(found) {
		case 0:
			if from := volumeDisks(inherited, pool, vol); len(from) > 0 {
				return errkind.Wrap(errkind.Invalid, "%s has volume %s/%s from its profiles (device %s): change the profile", o, pool, vol, from[0])
			}
			return errkind.Wrap(errkind.NotFound, "%s has no disk of volume %s/%s", o, pool, vol)
		case 1:
			delete(own, found[0])
			return nil
		default:
			return errkind.Wrap(errkind.Invalid, "%s has volume %s/%s as devices %s: remove the one meant with `silo config device remove`", o, pool, vol, strings.Join(found, ", "))
		}
	})
}
