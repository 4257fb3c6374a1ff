package main

import (
	_ "embed"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/silo-dev/silo/engine"
	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/remote"
)

// The scripts call "silo __complete WORD... CURRENT", which prints the
// candidates for CURRENT, one a line, then a directive line: ":files"
// (the shell may complete file names), ":nospace" (no space after the
// candidate, which goes on: INSTANCE/PATH), or ":".
var (
	//go:embed completion.bash
	bashCompletion string
	//go:embed completion.zsh
	zshCompletion string
)

// completeRemotes lists the remotes that a reference may name as
// "REMOTE:": none while the client has no remote but local.
func completeRemotes() []string {
	dir, err := remote.Dir()
	if err != nil {
		return nil
	}
	cfg, err := remote.Load(dir)
	if err != nil || len(cfg.Remotes) == 0 {
		return nil
	}
	return cfg.Names()
}

func completionCommands() []*cli.Command {
	return []*cli.Command{
		{Name: "completion", Usage: "print a script that completes silo's commands, flags and names in bash or zsh", ArgsUsage: "bash|zsh",
			Action: func(c *cli.Context) error {
				a, err := args(c, 1, 1)
				if err != nil {
					return err
				}
				script, ok := map[string]string{"bash": bashCompletion, "zsh": zshCompletion}[a[0]]
				if !ok {
					return errkind.Wrap(errkind.Invalid, "completion for %q: the shells are bash and zsh", a[0])
				}
				_, err = fmt.Fprint(os.Stdout, script)
				return err
			}},
		{Name: "__complete", Hidden: true, SkipFlagParsing: true, Action: func(c *cli.Context) error {
			words := c.Args().Slice()
			if len(words) == 0 {
				words = []string{""}
			}
			cands, directive := complete(c.App, c.String("state-dir"), words)
			var b strings.Builder
			for _, s := range cands {
				b.WriteString(s + "\n")
			}
			b.WriteString(directive + "\n")
			_, err := os.Stdout.WriteString(b.String())
			return err
		}},
	}
}

// complete returns the candidates for the last of words (the command line
// after "silo", up to the cursor), and the directive for the shell.
func complete(app *cli.App, stateDir string, words []string) ([]string, string) {
	cur, before := words[len(words)-1], words[:len(words)-1]
	flags, cmds := app.Flags, app.Commands
	var path []*cli.Command
	var pos []string // the positional arguments before cur
	for i := 0; i < len(before); i++ {
		w := before[i]
		switch {
		case w == "--":
			return nil, ":files" // a command to run in an instance
		case strings.HasPrefix(w, "-") && w != "-":
			n := flagLen(flags, before[i:])
			if name, value, ok := strings.Cut(strings.TrimLeft(w, "-"), "="); len(path) == 0 && name == "state-dir" {
				if !ok && n == 2 {
					value = before[i+1]
				}
				stateDir = value
			}
			i += n - 1
		case len(pos) == 0 && findCommand(cmds, w) != nil:
			cmd := findCommand(cmds, w)
			path, flags, cmds = append(path, cmd), cmd.Flags, cmd.Subcommands
		default:
			pos = append(pos, w)
		}
	}
	// The value of a flag.
	if len(before) > 0 && strings.HasPrefix(before[len(before)-1], "-") && flagLen(flags, []string{before[len(before)-1], cur}) == 2 {
		name := strings.TrimLeft(before[len(before)-1], "-")
		if name == "state-dir" {
			return nil, ":files"
		}
		kind, ok := map[string]string{"pool": "POOL", "p": "POOL", "network": "NETWORK", "n": "NETWORK", "profile": "PROFILE"}[name]
		if !ok {
			return nil, ":files"
		}
		return argCandidates(stateDir, kind, nil, cur)
	}
	if strings.HasPrefix(cur, "-") {
		var out []string
		for _, f := range flags {
			for _, n := range f.Names() {
				if len(n) > 1 {
					out = append(out, "--"+n)
				} else {
					out = append(out, "-"+n)
				}
			}
		}
		return prefixed(out, cur), ":"
	}
	if len(pos) == 0 && len(cmds) > 0 {
		var out []string
		for _, c := range cmds {
			if !c.Hidden {
				out = append(out, c.Name)
			}
		}
		return prefixed(out, cur), ":"
	}
	if len(path) == 0 {
		return nil, ":"
	}
	tokens := strings.Fields(path[len(path)-1].ArgsUsage)
	if len(tokens) == 0 {
		return nil, ":"
	}
	i := min(len(pos), len(tokens)-1)
	if len(pos) >= len(tokens) && !strings.Contains(tokens[len(tokens)-1], "...") {
		return nil, ":"
	}
	return argCandidates(stateDir, argKind(path[0].Name, tokens, i), pos, cur)
}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}

// argKind tells what the positional argument i of a command in group
// (the first word of its name) is, from the word that names it in the
// command's usage: NAME is the group's own kind of thing where it comes
// first, and a volume after a POOL; a new name (NEW, DST, or a NAME after
// an IMAGE) completes nothing.
func argKind(group string, tokens []string, i int) string {
	// [REMOTE:]NAME is a NAME: the remote is offered once a letter is typed.
	t := strings.Trim(strings.TrimPrefix(strings.TrimLeft(tokens[i], "["), "REMOTE:]"), "[].")
	switch t {
	case "NAME", "OLD":
		if i > 0 && tokens[i-1] == "POOL" {
			return "VOLUME"
		}
		if i > 0 {
			return ""
		}
		switch group {
		case "pool", "network", "profile", "remote":
			return strings.ToUpper(group)
		case "image":
			return ""
		}
		return "INSTANCE"
	case "PROFILE[,PROFILE":
		return "PROFILES"
	case "SNAP":
		if i > 1 && tokens[0] == "POOL" {
			return "VOLUME-SNAP"
		}
		return "SNAP"
	case "NAME[/SNAP", "SRC[/SNAP":
		return "INSTANCE/SNAP"
	case "NAME/PATH":
		return "INSTANCE/"
	case "POOL/NAME[/SNAP":
		return "POOL/VOLUME/SNAP"
	case "REF", "IMAGE":
		return "IMAGE"
	case "ALIAS", "POOL", "VOLUME", "INSTANCE", "PROFILE":
		return t
	case "DEVICE":
		// An existing device of the NAME or PROFILE before it; not the new
		// one that a TYPE follows, nor one named after a PATH.
		if i == 0 || i+1 < len(tokens) && tokens[i+1] == "TYPE" {
			return ""
		}
		switch tokens[i-1] {
		case "NAME":
			return "DEVICE"
		case "PROFILE":
			return "PROFILE-DEVICE"
		}
		return ""
	case "FILE", "LOCAL", "ROOTFS":
		return "FILE"
	}
	return ""
}

// argCandidates lists the names of kind in state directory stateDir
// that start with cur; pos are the arguments before it.
func argCandidates(stateDir, kind string, pos []string, cur string) ([]string, string) {
	if kind == "FILE" {
		return nil, ":files"
	}
	if kind == "" {
		return nil, ":"
	}
	// Remotes where a name may carry one, once a letter is typed: a bare
	// list is the host's own names.
	var remotes []string
	switch kind {
	case "REMOTE", "INSTANCE", "INSTANCE/", "INSTANCE/SNAP", "IMAGE", "ALIAS":
		if cur != "" {
			remotes = completeRemotes()
		}
	}
	if kind == "REMOTE" {
		return prefixed(remotes, cur), ":"
	}
	if strings.Contains(cur, ":") {
		return nil, ":" // another host's names are not read on each key press
	}
	n, err := engine.ReadNames(stateDir)
	if err != nil {
		return nil, ":"
	}
	last := func(i int) string {
		if i < len(pos) {
			return pos[len(pos)-1-i]
		}
		return ""
	}
	var out []string
	directive := ":"
	switch kind {
	case "INSTANCE":
		out = n.Instances
	case "INSTANCE/":
		for _, i := range n.Instances {
			out = append(out, i+"/")
		}
		directive = ":nospace"
	case "INSTANCE/SNAP":
		out = slashed(n.Instances, n.Snapshots, cur)
	case "SNAP":
		out = n.Snapshots[last(0)]
	case "IMAGE":
		out = n.Images
	case "ALIAS":
		out = n.Aliases
	case "POOL":
		out = n.Pools
	case "NETWORK":
		out = n.Networks
	case "PROFILE":
		out = n.Profiles
	case "PROFILES":
		// PROFILE[,PROFILE...]: the names after the last comma.
		head := cur[:strings.LastIndex(cur, ",")+1]
		for _, p := range n.Profiles {
			out = append(out, head+p)
		}
		directive = ":nospace"
	case "DEVICE":
		out = n.Devices[last(0)]
	case "PROFILE-DEVICE":
		out = n.ProfileDevices[last(0)]
	case "VOLUME":
		out = n.Volumes[last(0)]
	case "VOLUME-SNAP":
		out = n.VolumeSnapshots[last(1)+"/"+last(0)]
	case "POOL/VOLUME/SNAP":
		vols := map[string][]string{}
		for pool, vs := range n.Volumes {
			for _, v := range vs {
				vols[pool] = append(vols[pool], pool+"/"+v)
			}
		}
		if pool, _, ok := strings.Cut(cur, "/"); ok {
			out = slashed(vols[pool], n.VolumeSnapshots, cur)
		} else {
			for _, p := range n.Pools {
				out = append(out, p+"/")
			}
			directive = ":nospace"
		}
	}
	for _, r := range remotes {
		out = append(out, r+":")
	}
	return prefixed(out, cur), directive
}

// slashed lists names, and NAME/SNAP for each of subs[NAME] once cur
// names one of names with its slash.
func slashed(names []string, subs map[string][]string, cur string) []string {
	out := slices.Clone(names)
	for _, name := range names {
		if strings.HasPrefix(cur, name+"/") {
			for _, s := range subs[name] {
				out = append(out, name+"/"+s)
			}
		}
	}
	return out
}

// prefixed keeps those of names that start with cur, sorted, once each.
func prefixed(names []string, cur string) []string {
	var out []string
	for _, n := range names {
		if strings.HasPrefix(n, cur) {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
