package engine

import (
	"context"
	"os"
	"path/filepath"
	"time"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/internal/store"
	"github.com/silo-dev/silo/runtime/container"
	"github.com/silo-dev/silo/runtime/monitor"
)

// MonitorHost is what the monitor of an instance reports to: it records
// each boot's run in the store, and finishes the run when init has exited
// for good (deleting an ephemeral instance). It opens the state directory
// without recovery: a monitor takes on no other command's work.
func MonitorHost(cfg monitor.Config) (monitor.Host, error) {
	e, err := open(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	return &monitorHost{e: e, cfg: cfg}, nil
}

type monitorHost struct {
	e   *Engine
	cfg monitor.Config
	run *store.Run // of the last boot
}

func (h *monitorHost) Created(ctx context.Context, pid int) error {
	return h.e.plugAll(ctx, h.cfg.Name, pid)
}

func (h *monitorHost) Started(pid int) error {
	start, err := container.ProcStart(pid)
	if err != nil {
		return err
	}
	// A boot after the first is a reboot from inside the instance.
	action := api.ActionInstanceStarted
	if _, err := os.Stat(filepath.Join(h.cfg.Dir, restartFile)); err == nil || h.run != nil {
		action = api.ActionInstanceRestarted
	}
	name := h.cfg.Name
	h.run = &store.Run{Name: name, Pid: pid, Start: start, Boot: bootID(), Started: time.Now().UTC(),
		Init: string(h.cfg.Init), Runtime: h.cfg.OCI.Binary}
	return h.e.store.Update(func(tx *store.Tx) error {
		inst, err := tx.Instance(name)
		if err != nil {
			return err
		}
		if inst.WasRunning {
			inst.WasRunning = false // it runs again
			if err := tx.PutInstance(inst); err != nil {
				return err
			}
		}
		if err := tx.PutRun(h.run); err != nil {
			return err
		}
		return instanceEvent(tx, action, name, nil)
	})
}

func (h *monitorHost) Exited(ctx context.Context) error {
	defer h.e.Close()
	return h.e.finishRun(ctx, h.run)
}
