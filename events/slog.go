package events

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/silo-dev/silo/api"
)

// Handler is a slog.Handler that publishes each record as a logging event.
type Handler struct {
	bus   *Bus
	level slog.Leveler
	attrs []slog.Attr // with their groups' names in their keys
	group string      // the prefix of the keys of later attributes
}

// NewHandler publishes, on bus, the records of level and above.
func NewHandler(bus *Bus, level slog.Leveler) *Handler {
	return &Handler{bus: bus, level: level}
}

// Enabled reports whether records of level are published.
func (h *Handler) Enabled(_ context.Context, level slog.Level) bool {
	return level >= h.level.Level()
}

// Handle publishes r.
func (h *Handler) Handle(_ context.Context, r slog.Record) error {
	ctx := map[string]string{}
	for _, a := range h.attrs {
		addAttr(ctx, "", a)
	}
	r.Attrs(func(a slog.Attr) bool {
		addAttr(ctx, h.group, a)
		return true
	})
	ev, err := newEvent(api.EventTypeLogging, api.EventLogging{Message: r.Message, Level: levelName(r.Level), Context: ctx})
	if err != nil {
		return err
	}
	if !r.Time.IsZero() {
		ev.Timestamp = r.Time.UTC()
	}
	h.bus.Publish(ev)
	return nil
}

// WithAttrs returns a handler that adds attrs to every record.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	h2 := *h
	h2.attrs = append([]slog.Attr(nil), h.attrs...)
	for _, a := range attrs {
		h2.attrs = append(h2.attrs, slog.Attr{Key: h.group + a.Key, Value: a.Value})
	}
	return &h2
}

// WithGroup returns a handler whose later attributes are in group name.
func (h *Handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	h2 := *h
	h2.group = h.group + name + "."
	return &h2
}

// addAttr puts a into ctx as strings, a group's members under dotted keys.
func addAttr(ctx map[string]string, prefix string, a slog.Attr) {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += a.Key + "."
		}
		for _, m := range v.Group() {
			addAttr(ctx, p, m)
		}
		return
	}
	if a.Key == "" {
		return
	}
	ctx[prefix+a.Key] = fmt.Sprint(v.Any())
}

// levelName is a level as LXD's logging events name it.
func levelName(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "error"
	case l >= slog.LevelWarn:
		return "warning"
	case l >= slog.LevelInfo:
		return "info"
	}
	return "debug"
}
