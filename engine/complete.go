package engine

import (
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/silo-dev/silo/internal/store"
)

// Names are the names of everything a command may be given, for shell
// completion.
type Names struct {
	Instances []string
	// Snapshots maps each instance to the names of its snapshots.
	Snapshots map[string][]string
	Images    []string // aliases, then fingerprints
	Aliases   []string
	Pools     []string
	Networks  []string
	Profiles  []string
	// Devices maps each instance to its devices, its profiles' with its
	// own, and ProfileDevices each profile to its own.
	Devices, ProfileDevices map[string][]string
	// Volumes maps each pool to its custom volumes, and VolumeSnapshots
	// each "POOL/VOLUME" to that volume's snapshots.
	Volumes         map[string][]string
	VolumeSnapshots map[string][]string
}

// ReadNames reads the names in state directory stateDir: in one read-only
// transaction, recovering nothing, locking nothing else, and making
// nothing where there is no state yet, so that a shell may call it on
// every key press while other commands run.
func ReadNames(stateDir string) (*Names, error) {
	n := &Names{Snapshots: map[string][]string{}, Devices: map[string][]string{}, ProfileDevices: map[string][]string{}, Volumes: map[string][]string{}, VolumeSnapshots: map[string][]string{}}
	db := filepath.Join(stateDir, "silo.db")
	if _, err := os.Stat(db); errors.Is(err, fs.ErrNotExist) {
		return n, nil
	}
	// A command that holds the database longer than this costs the
	// completion its names, not the shell its prompt.
	st, err := store.Open(db, time.Second)
	if err != nil {
		return nil, err
	}
	return n, st.View(func(tx *store.Tx) error {
		if err := eachInstance(tx, func(i, x *store.Instance, _ *store.Run) error {
			n.Instances = append(n.Instances, i.Name)
			for _, s := range i.Snapshots {
				n.Snapshots[i.Name] = append(n.Snapshots[i.Name], s.Name)
			}
			n.Devices[i.Name] = slices.Collect(maps.Keys(x.Devices))
			return nil
		}); err != nil {
			return err
		}
		imgs, err := tx.Images()
		if err != nil {
			return err
		}
		var fps []string
		for _, img := range imgs {
			n.Aliases = append(n.Aliases, img.Aliases...)
			fps = append(fps, img.Fingerprint)
		}
		n.Images = append(append(n.Images, n.Aliases...), fps...)
		pools, err := tx.Pools()
		if err != nil {
			return err
		}
		for _, p := range pools {
			n.Pools = append(n.Pools, p.Name)
		}
		nets, err := tx.Networks()
		if err != nil {
			return err
		}
		for _, x := range nets {
			n.Networks = append(n.Networks, x.Name)
		}
		profiles, err := tx.Profiles()
		if err != nil {
			return err
		}
		for _, p := range profiles {
			n.Profiles = append(n.Profiles, p.Name)
			n.ProfileDevices[p.Name] = slices.Collect(maps.Keys(p.Devices))
		}
		vols, err := tx.CustomVolumes("")
		if err != nil {
			return err
		}
		for _, v := range vols {
			n.Volumes[v.Pool] = append(n.Volumes[v.Pool], v.Name)
			for _, s := range v.Snapshots {
				n.VolumeSnapshots[v.Pool+"/"+v.Name] = append(n.VolumeSnapshots[v.Pool+"/"+v.Name], s.Name)
			}
		}
		return nil
	})
}
