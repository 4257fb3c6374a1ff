// Package engine carries out what users ask of silo: pools, images,
// instances, snapshots, copies and files. It records the intent of every
// multi-step operation in the store before it touches storage, so that a
// command killed at any point leaves work that the next command finishes or
// undoes.
package engine

import (
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/silo-dev/silo/events"
	"github.com/silo-dev/silo/internal/journal"
	"github.com/silo-dev/silo/internal/store"
	"github.com/silo-dev/silo/storage"
)

// DefaultStateDir is where silo keeps its state unless told otherwise.
const DefaultStateDir = "/var/lib/silo"

// Engine is silo's state directory opened by one command.
type Engine struct {
	stateDir string
	store    *store.Store
	journal  *journal.Journal
	events   *events.Bus

	mu      sync.Mutex
	drivers map[string]storage.Driver // ready drivers, by pool name
	locks   []*os.File                // pool locks held until Close
}

// Close releases the pool locks the engine holds.
func (e *Engine) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, f := range e.locks {
		f.Close()
	}
	e.locks = nil
	return nil
}

func (e *Engine) path(parts ...string) string {
	return filepath.Join(append([]string{e.stateDir}, parts...)...)
}

// bootID identifies this boot of the host: a pool made ready under it
// needs no mount or import until the next reboot, and a run recorded under
// another boot has ended. Read once: every running instance asks.
var bootID = sync.OnceValue(func() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
})
