package engine

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/silo-dev/silo/internal/fsutil"
	"github.com/silo-dev/silo/internal/store"
)

// AutostartReport is what an autostart pass did.
type AutostartReport struct {
	Started []string `json:"started"` // in the order they started
	// Failed lists the instances that did not start, one line each.
	Failed []string `json:"failed"`
}

// Autostart starts the instances that should run after the host's boot,
// as LXD does when its daemon starts: those with boot.autostart=true, and,
// where boot.autostart is unset, those whose last run ended unseen (the
// host went down under them) rather than by a stop. They start by
// boot.autostart.priority, highest first, then by name, waiting
// boot.autostart.delay seconds after each. Instances that run already
// are left alone, so a second pass starts nothing twice; passes do not
// overlap. One that fails to start is logged and reported, and the
// others go on. When ctx ends, the pass ends after the start under way.
func (e *Engine) Autostart(ctx context.Context) (*AutostartReport, error) {
	lock, err := fsutil.LockFile(e.path("locks", "autostart.lock"), syscall.LOCK_EX)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	type candidate struct {
		name            string
		priority, delay int
	}
	var todo []candidate
	err = e.store.View(func(tx *store.Tx) error {
		return eachExpanded(tx, func(inst *store.Instance, cfg map[string]string) {
			if auto := cfg[KeyAutostart]; auto == "false" || auto == "" && !inst.WasRunning {
				return
			}
			// Both checked when set.
			priority, _ := strconv.Atoi(cfg[KeyAutostartPriority])
			delay, _ := strconv.Atoi(cfg[KeyAutostartDelay])
			todo = append(todo, candidate{inst.Name, priority, delay})
		})
	})
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(todo, func(a, b candidate) int { return cmp.Compare(b.priority, a.priority) })
	r := &AutostartReport{Started: []string{}, Failed: []string{}}
	for _, c := range todo {
		if ctx.Err() != nil {
			return r, ctx.Err()
		}
		run, err := e.liveRun(c.name)
		if err == nil && run != nil {
			continue
		}
		if err == nil {
			err = e.Start(context.WithoutCancel(ctx), c.name)
		}
		if err != nil {
			slog.Error("autostart", "instance", c.name, "error", err)
			r.Failed = append(r.Failed, fmt.Sprintf("%s: %v", c.name, err))
			continue
		}
		r.Started = append(r.Started, c.name)
		select {
		case <-ctx.Done():
			return r, ctx.Err()
		case <-time.After(time.Duration(c.delay) * time.Second):
		}
	}
	if n := len(r.Failed); n > 0 {
		return r, fmt.Errorf("autostart: %d of %d failed to start; the first: %s", n, len(todo), r.Failed[0])
	}
	return r, nil
}
