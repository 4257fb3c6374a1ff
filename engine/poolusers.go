package engine

import (
	"sort"

	"github.com/silo-dev/silo/internal/store"
)

// poolUsers are the instances on a pool, the images with a base volume
// there and its custom volumes, by name and fingerprint.
type poolUsers struct {
	instances, images, volumes []string
}

func usersOf(tx *store.Tx, p *store.Pool) (*poolUsers, error) {
	users := &poolUsers{}
	insts, err := tx.Instances()
	if err != nil {
		return nil, err
	}
	for _, i := range insts {
		if i.Pool == p.Name {
			users.instances = append(users.instances, i.Name)
		}
	}
	imgs, err := tx.Images()
	if err != nil {
		return nil, err
	}
	for _, img := range imgs {
		if _, ok := img.Bases[p.Name]; ok {
			users.images = append(users.images, img.Fingerprint)
		}
	}
	vols, err := tx.CustomVolumes(p.Name)
	if err != nil {
		return nil, err
	}
	for _, v := range vols {
		users.volumes = append(users.volumes, v.Name)
	}
	sort.Strings(users.instances)
	return users, nil
}
