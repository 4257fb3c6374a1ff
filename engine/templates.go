package engine

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/silo-dev/silo/image"
	"github.com/silo-dev/silo/internal/store"
)

// applyTemplates renders, into the root of inst, the image templates that
// the trigger (create, copy or start) names, as LXD does.
func applyTemplates(root string, inst *store.Instance, trigger string) error {
	meta := imageMetadata(inst.Metadata)
	if meta == nil {
		return nil
	}
	paths := make([]string, 0, len(meta.Templates))
	for p := range meta.Templates {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		t := meta.Templates[p]
		if !slices.Contains(t.When, trigger) {
			continue
		}
		if t.CreateOnly && existsIn(root, p) {
			continue
		}
		src, ok := inst.Templates[t.Template]
		if !ok {
			return fmt.Errorf("template %s for %s is missing", t.Template, p)
		}
		out, err := image.Render(src, templateVars(inst, t, trigger, p))
		if err != nil {
			return fmt.Errorf("template %s for %s: %w", t.Template, p, err)
		}
		s := onDisk(inst.Shift)
		if err := writeIn(root, p, strings.NewReader(out), 0o644, int(s.UID(0)), int(s.GID(0))); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("template %s for %s: %w", t.Template, p, err)
		}
	}
	return nil
}

// templateVars is what a template sees, named as LXD names it.
func templateVars(inst *store.Instance, t *image.Template, trigger, path string) map[string]any {
	self := map[string]string{
		"name":         inst.Name,
		"architecture": inst.Metadata.Architecture,
		"privileged":   "true",
		"ephemeral":    strconv.FormatBool(inst.Ephemeral),
	}
	config := inst.Config
	if config == nil {
		config = map[string]string{}
	}
	return map[string]any{
		"container":  self,
		"instance":   self,
		"config":     config,
		"devices":    map[string]string{},
		"properties": t.Properties,
		"trigger":    trigger,
		"path":       path,
	}
}

// existsIn reports whether p exists inside root.
func existsIn(root, p string) bool {
	fd, err := openIn(root, p, unix.O_PATH)
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
}
