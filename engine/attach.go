package engine

import (
	"strings"

	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/internal/store"
)

// VolumeDisk is the disk device dev (named after the volume when empty)
// that mounts custom volume vol of pool at path, and its name: what
// `volume attach` gives an instance, at once if it runs.
func VolumeDisk(pool, vol, path, dev string) (string, store.Device, error) {
	if dev == "" {
		dev = vol
	}
	d, err := ParseDevice(dev, DeviceDisk, []string{"pool=" + pool, "source=" + vol, "path=" + path})
	return dev, d, err
}

// DetachingVolume is the edit that takes from o its own disk device
// that mounts custom volume vol of pool: `volume detach`.
func DetachingVolume(o Owner, pool, vol string) DeviceEdit {
	return func(own, inherited store.Devices) error {
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
	}
}
