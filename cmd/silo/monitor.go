package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"go.yaml.in/yaml/v3"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/client"
	"github.com/silo-dev/silo/engine"
	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/internal/store"
)

func monitorCommand() *cli.Command {
	return &cli.Command{Name: "monitor", Usage: "print events as they happen, until interrupted: the lifecycle events of every silo command on this host, or a remote's events (operation and logging events come from a server)",
		ArgsUsage: "[REMOTE:]",
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "type", Usage: "only events of this type: lifecycle, operation or logging (repeatable)"},
			&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Value: "yaml", Usage: "yaml, json or pretty"},
			&cli.BoolFlag{Name: "all", Usage: fmt.Sprintf("first the events the log still holds (the last %d), oldest first; not on a remote", store.EventLogSize)},
		}, Action: onRemote(0, monitorEvents, monitorRemote)}
}

func monitorEvents(c *cli.Context, e *engine.Engine) error {
	if a, err := args(c, 0, 1); err != nil || a[0] != "" {
		return usage(c)
	}
	print, err := eventPrinter(os.Stdout, c.String("format"))
	if err != nil {
		return err
	}
	bus := e.Events()
	var after uint64
	if !c.Bool("all") {
		if after, err = bus.Last(); err != nil {
			return err
		}
	}
	sub, err := bus.Subscribe(c.Context, c.StringSlice("type"), after)
	if err != nil {
		return err
	}
	for entry := range sub.C {
		if entry.Missed > 0 {
			fmt.Fprintf(os.Stderr, "silo: warning: missed %d events: they went by before they could be read\n", entry.Missed)
		}
		if err := print(entry.Event); err != nil {
			return err
		}
	}
	if err := sub.Err(); err != nil && c.Context.Err() == nil {
		return err
	}
	return nil // interrupted
}

// monitorRemote prints a remote's events, read from its /1.0/events.
func monitorRemote(c *cli.Context, cl *client.Client, a []string) error {
	if a, err := exactly(c, a, 0, 1); err != nil || a[0] != "" {
		return usage(c)
	}
	if c.Bool("all") {
		return errkind.Wrap(errkind.Invalid, "--all is not served by remotes: their events stream from the moment of connection")
	}
	print, err := eventPrinter(os.Stdout, c.String("format"))
	if err != nil {
		return err
	}
	stream, err := cl.Events(c.Context, c.StringSlice("type"))
	if err != nil {
		return err
	}
	for ev := range stream.C {
		if err := print(ev); err != nil {
			return err
		}
	}
	return stream.Err() // nil when interrupted
}

// eventPrinter returns what prints each event to w in format.
func eventPrinter(w io.Writer, format string) (func(api.Event) error, error) {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		return func(ev api.Event) error { return enc.Encode(ev) }, nil
	case "yaml":
		return func(ev api.Event) error {
			// Through JSON, so that the metadata reads as a map and the
			// keys are the API's.
			var m map[string]any
			if err := roundTrip(ev, &m); err != nil {
				return err
			}
			var b bytes.Buffer
			enc := yaml.NewEncoder(&b)
			enc.SetIndent(2)
			if err := enc.Encode(m); err != nil {
				return err
			}
			_, err := fmt.Fprintf(w, "%s\n", b.Bytes())
			return err
		}, nil
	case "pretty":
		return func(ev api.Event) error {
			line, err := prettyEvent(ev)
			if err == nil {
				_, err = fmt.Fprintln(w, line)
			}
			return err
		}, nil
	}
	return nil, errkind.Wrap(errkind.Invalid, "unknown format %q: use yaml, json or pretty", format)
}

// prettyEvent is an event on one line: when, type, what and details.
func prettyEvent(ev api.Event) (string, error) {
	head := ev.Timestamp.Local().Format(time.RFC3339) + " " + ev.Type
	switch ev.Type {
	case api.EventTypeLifecycle:
		var l api.EventLifecycle
		if err := json.Unmarshal(ev.Metadata, &l); err != nil {
			return "", err
		}
		return head + " " + l.Action + " " + l.Source + contextText(l.Context), nil
	case api.EventTypeLogging:
		var l api.EventLogging
		if err := json.Unmarshal(ev.Metadata, &l); err != nil {
			return "", err
		}
		ctx := make(map[string]any, len(l.Context))
		for k, v := range l.Context {
			ctx[k] = v
		}
		return head + " " + l.Level + " " + l.Message + contextText(ctx), nil
	case api.EventTypeOperation:
		var op api.Operation
		if err := json.Unmarshal(ev.Metadata, &op); err != nil {
			return "", err
		}
		return head + " " + op.ID + " " + op.Status + " " + op.Description, nil
	}
	return head + " " + string(ev.Metadata), nil
}

// contextText is " k=v k2=v2" in the order of the keys.
func contextText(m map[string]any) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%v", k, m[k])
	}
	return b.String()
}

func roundTrip(in, out any) error {
	data, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, out)
}
