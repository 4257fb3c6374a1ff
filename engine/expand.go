package engine

import (
	"fmt"
	"maps"

	"github.com/silo-dev/silo/internal/store"
)

// expand applies inst's profiles in order and then its own config and
// devices: what the instance runs with.
func expand(tx *store.Tx, inst *store.Instance) (map[string]string, store.Devices, error) {
	cfg, devs := map[string]string{}, store.Devices{}
	for _, name := range inst.Profiles {
		p, err := tx.Profile(name)
		if err != nil {
			return nil, nil, fmt.Errorf("instance %s: %w", inst.Name, err)
		}
		maps.Copy(cfg, p.Config)
		maps.Copy(devs, p.Devices) // a copy already
	}
	maps.Copy(cfg, inst.Config)
	maps.Copy(devs, inst.Devices.Clone())
	maps.DeleteFunc(devs, func(_ string, d store.Device) bool { return d["type"] == deviceNone })
	return cfg, devs, nil
}

// expanded is inst with its profiles applied to its config and devices.
func expanded(tx *store.Tx, inst *store.Instance) (*store.Instance, error) {
	cfg, devs, err := expand(tx, inst)
	if err != nil {
		return nil, err
	}
	out := *inst
	out.Config, out.Devices = cfg, devs
	return &out, nil
}

// eachExpanded calls fn with every instance and its expanded config, for
// the background passes that read keys a profile may set.
func eachExpanded(tx *store.Tx, fn func(inst *store.Instance, cfg map[string]string)) error {
	insts, err := tx.Instances()
	if err != nil {
		return err
	}
	for _, inst := range insts {
		cfg, _, err := expand(tx, inst)
		if err != nil {
			return err
		}
		fn(inst, cfg)
	}
	return nil
}
