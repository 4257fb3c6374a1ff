package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"
	"go.yaml.in/yaml/v3"
	"golang.org/x/term"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/client"
	"github.com/silo-dev/silo/engine"
	"github.com/silo-dev/silo/errkind"
)

// deviceCommand is `config device` or `profile device`: the same commands
// on an instance's devices or a profile's.
func deviceCommand(profile bool) *cli.Command {
	what := "NAME"
	if profile {
		what = "PROFILE"
	}
	act := func(fn func(c *cli.Context, h deviceHost, o engine.Owner, a []string) error, min, max int) cli.ActionFunc {
		return onProfiles(min, max, func(c *cli.Context, h profileHost, a []string) error {
			return fn(c, h, engine.Owner{Profile: profile, Name: a[0]}, a[1:])
		})
	}
	return &cli.Command{
		Name:  "device",
		Usage: "manage devices: nic, proxy, disk (each changes live on a running instance)",
		Subcommands: []*cli.Command{
			{Name: "add", Usage: "add a device", ArgsUsage: what + " DEVICE TYPE [KEY=VALUE...]", Action: act(deviceAdd, 3, 64)},
			{Name: "set", Usage: "set keys of a device", ArgsUsage: what + " DEVICE KEY=VALUE...", Action: act(deviceSet, 3, 64)},
			{Name: "unset", Usage: "remove keys of a device", ArgsUsage: what + " DEVICE KEY...", Action: act(deviceUnset, 3, 64)},
			{Name: "remove", Aliases: []string{"rm"}, Usage: "remove devices", ArgsUsage: what + " DEVICE...", Action: act(deviceRemove, 2, 64)},
			{Name: "list", Aliases: []string{"ls"}, Usage: "list devices", ArgsUsage: what, Action: act(deviceList, 1, 1)},
			{Name: "show", Usage: "show devices and their settings", ArgsUsage: what, Flags: []cli.Flag{formatFlag}, Action: act(deviceShow, 1, 1)},
		},
	}
}

// trimArgs drops the empty strings that args pads a command's optional
// arguments with.
func trimArgs(a []string) []string {
	for len(a) > 0 && a[len(a)-1] == "" {
		a = a[:len(a)-1]
	}
	return a
}

func deviceAdd(c *cli.Context, h deviceHost, o engine.Owner, a []string) error {
	a = trimArgs(a)
	d, err := engine.ParseDevice(a[0], a[1], a[2:])
	if err != nil {
		return err
	}
	if err := h.addDevice(c.Context, o, a[0], d); err != nil {
		return err
	}
	fmt.Printf("Device %s added to %s\n", a[0], o)
	return nil
}

func deviceSet(c *cli.Context, h deviceHost, o engine.Owner, a []string) error {
	a = trimArgs(a)
	set, err := keyValues(a[1:])
	if err != nil {
		return fmt.Errorf("device %s: %w", a[0], err)
	}
	return h.setDevice(c.Context, o, a[0], set, nil)
}

func deviceUnset(c *cli.Context, h deviceHost, o engine.Owner, a []string) error {
	a = trimArgs(a)
	return h.setDevice(c.Context, o, a[0], nil, a[1:])
}

func deviceRemove(c *cli.Context, h deviceHost, o engine.Owner, a []string) error {
	for _, dev := range trimArgs(a) {
		if err := h.removeDevice(c.Context, o, dev); err != nil {
			return err
		}
		fmt.Printf("Device %s removed from %s\n", dev, o)
	}
	return nil
}

func deviceList(c *cli.Context, h deviceHost, o engine.Owner, _ []string) error {
	devs, err := h.devices(c.Context, o)
	if err != nil {
		return err
	}
	for _, name := range slices.Sorted(maps.Keys(devs)) {
		fmt.Println(name)
	}
	return nil
}

func deviceShow(c *cli.Context, h deviceHost, o engine.Owner, _ []string) error {
	devs, err := h.devices(c.Context, o)
	if err != nil {
		return err
	}
	return outputYAML(c, devs)
}

// outputYAML prints v as JSON for programs, or as YAML for people, as lxc
// shows config.
func outputYAML(c *cli.Context, v any) error {
	if c.String("format") == "json" {
		return output(c, v, nil, nil)
	}
	out, err := yaml.Marshal(v)
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(out)
	return err
}

// instanceConfig is what `config show` shows, in LXD's words.
type instanceConfig struct {
	Profiles []string                     `json:"profiles" yaml:"profiles"`
	Config   map[string]string            `json:"config" yaml:"config"`
	Devices  map[string]map[string]string `json:"devices" yaml:"devices"`
}

func configShow(c *cli.Context, e *engine.Engine) error {
	a, err := args(c, 0, 1)
	if err != nil {
		return err
	}
	if a[0] == "" {
		return serverConfigShow(c, e)
	}
	i, err := e.Instance(c.Context, a[0])
	if err != nil {
		return err
	}
	return showConfig(c, i)
}

// showConfig prints what config show found, here or on a remote.
func showConfig(c *cli.Context, i *api.Instance) error {
	shown := instanceConfig{Profiles: i.Profiles, Config: i.Config, Devices: i.Devices}
	if c.Bool("expanded") {
		shown.Config, shown.Devices = i.ExpandedConfig, i.ExpandedDevices
	}
	return outputYAML(c, shown)
}

func profileCommand() *cli.Command {
	return &cli.Command{
		Name:  "profile",
		Usage: "manage profiles: sets of config and devices that instances apply in order",
		Subcommands: []*cli.Command{
			{Name: "create", Usage: "make an empty profile", ArgsUsage: "NAME", Flags: []cli.Flag{
				&cli.StringFlag{Name: "description", Usage: "what the profile is for"},
			}, Action: onProfiles(1, 1, profileCreate)},
			{Name: "list", Aliases: []string{"ls"}, Usage: "list profiles", ArgsUsage: "[REMOTE:]", Flags: []cli.Flag{formatFlag}, Action: listOn(func(e *engine.Engine, _ context.Context) ([]*api.Profile, error) { return e.Profiles() }, (*client.Client).Profiles, profileList)},
			{Name: "show", Usage: "show a profile", ArgsUsage: "NAME", Flags: []cli.Flag{formatFlag}, Action: onProfiles(1, 1, profileShow)},
			{Name: "set", Usage: "set config keys of a profile (instances that apply it follow)", ArgsUsage: "NAME KEY=VALUE...", Action: onProfiles(0, -1, profileSet)},
			{Name: "unset", Usage: "remove config keys of a profile", ArgsUsage: "NAME KEY...", Action: onProfiles(0, -1, profileUnset)},
			{Name: "edit", Usage: "replace a profile with YAML from stdin, or in $EDITOR on a terminal", ArgsUsage: "NAME", Action: onProfiles(1, 1, profileEdit)},
			{Name: "copy", Aliases: []string{"cp"}, Usage: "copy a profile", ArgsUsage: "NAME NEW", Action: onProfiles(2, 2, profileCopy)},
			{Name: "rename", Aliases: []string{"mv"}, Usage: "rename a profile, in every instance that applies it", ArgsUsage: "OLD NEW", Action: onProfiles(2, 2, profileRename)},
			{Name: "delete", Aliases: []string{"rm"}, Usage: "delete a profile no instance applies", ArgsUsage: "NAME", Action: onProfiles(1, 1, profileDelete)},
			{Name: "assign", Usage: "set the profiles an instance applies, in order", ArgsUsage: "INSTANCE PROFILE[,PROFILE...]", Action: onProfiles(2, 2, profileAssign)},
			deviceCommand(true),
		},
	}
}

func profileList(c *cli.Context, ps []*api.Profile) error {
	var rows [][]string
	for _, p := range ps {
		rows = append(rows, []string{p.Name, orDash(p.Description), fmt.Sprint(len(p.UsedBy))})
	}
	return output(c, ps, []string{"NAME", "DESCRIPTION", "USED BY"}, rows)
}

// profileYAML is a profile as `profile show` prints it and `profile
// edit` reads it.
type profileYAML struct {
	Name        string                       `yaml:"name"`
	Description string                       `yaml:"description"`
	Config      map[string]string            `yaml:"config"`
	Devices     map[string]map[string]string `yaml:"devices"`
	UsedBy      []string                     `yaml:"used_by,omitempty"`
}

// onProfiles runs a profile or device command on this host's engine, or
// through the remote that its first argument names (h2:NAME), with
// between min and max positional arguments (max -1: any number).
func onProfiles(min, max int, fn func(c *cli.Context, h profileHost, a []string) error) cli.ActionFunc {
	return onHost(func(e *engine.Engine) profileHost { return localProfiles{e} }, func(cl *client.Client) profileHost { return remoteProfiles{cl} }, min, max, fn)
}

func profileCreate(c *cli.Context, h profileHost, a []string) error {
	if err := h.create(c.Context, a[0], api.ProfilePut{Description: c.String("description")}); err != nil {
		return err
	}
	fmt.Printf("Profile %s created\n", a[0])
	return nil
}

func profileDelete(c *cli.Context, h profileHost, a []string) error {
	if err := h.remove(c.Context, a[0]); err != nil {
		return err
	}
	fmt.Printf("Profile %s deleted\n", a[0])
	return nil
}

func profileShow(c *cli.Context, h profileHost, a []string) error {
	p, _, err := h.profile(c.Context, a[0])
	if err != nil {
		return err
	}
	if c.String("format") == "json" {
		return output(c, p, nil, nil)
	}
	return outputYAML(c, profileYAML{p.Name, p.Description, p.Config, p.Devices, p.UsedBy})
}

func profileSet(c *cli.Context, h profileHost, a []string) error {
	if len(a) < 2 {
		return errkind.Wrap(errkind.Invalid, "usage: silo profile set NAME KEY=VALUE...")
	}
	cfg, err := engine.ParseConfig(a[1:])
	if err != nil {
		return err
	}
	return h.configure(c.Context, a[0], cfg, nil)
}

func profileUnset(c *cli.Context, h profileHost, a []string) error {
	if len(a) < 2 {
		return errkind.Wrap(errkind.Invalid, "usage: silo profile unset NAME KEY...")
	}
	return h.configure(c.Context, a[0], nil, a[1:])
}

// profileEdit replaces a profile with the YAML it reads; edited on a
// terminal, only if the profile has not changed since the editor opened
// it (on a remote, by its ETag), as lxc profile edit does.
func profileEdit(c *cli.Context, h profileHost, a []string) error {
	var text []byte
	var etag string
	var err error
	if term.IsTerminal(int(os.Stdin.Fd())) {
		if text, etag, err = editProfile(c.Context, h, a[0]); err != nil {
			return err
		}
	} else if text, err = io.ReadAll(os.Stdin); err != nil {
		return err
	}
	var y profileYAML
	if err := yaml.Unmarshal(text, &y); err != nil {
		return errkind.Wrap(errkind.Invalid, "profile %s: the YAML does not read: %v", a[0], err)
	}
	return h.replace(c.Context, a[0], api.ProfilePut{Description: y.Description, Config: y.Config, Devices: y.Devices}, etag)
}

// editProfile opens the profile's YAML in the user's editor and returns
// what they saved, with the ETag of what they were shown.
func editProfile(ctx context.Context, h profileHost, name string) ([]byte, string, error) {
	p, etag, err := h.profile(ctx, name)
	if err != nil {
		return nil, "", err
	}
	text, err := yaml.Marshal(profileYAML{p.Name, p.Description, p.Config, p.Devices, nil})
	if err != nil {
		return nil, "", err
	}
	dir, err := os.MkdirTemp("", "silo-profile")
	if err != nil {
		return nil, "", err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(path, text, 0o600); err != nil {
		return nil, "", err
	}
	editor := os.Getenv("VISUAL")
	if editor == "" {
		editor = os.Getenv("EDITOR")
	}
	if editor == "" {
		editor = "vi"
	}
	cmd := exec.Command("sh", "-c", editor+` "$1"`, "sh", path)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return nil, "", fmt.Errorf("editor %s: %w", editor, err)
	}
	text, err = os.ReadFile(path)
	return text, etag, err
}

// profileCopy copies a profile on its host, or to another (h2:p local:p,
// p h2:p; the name kept when none is given), as lxc profile copy does.
func profileCopy(c *cli.Context, h profileHost, a []string) error {
	dst, other, err := otherHost(c, a, 1)
	if err != nil || !other {
		if err == nil {
			err = h.copy(c.Context, a[0], dst.Name)
		}
		return err
	}
	if dst.Name == "" {
		dst.Name = a[0]
	}
	to, done, err := profileHostOf(c, dst)
	if err != nil {
		return err
	}
	defer done()
	return copyProfile(c.Context, h, a[0], to, dst.Name)
}

func profileRename(c *cli.Context, h profileHost, a []string) error {
	if err := oneHost(c, a, 1, "a rename"); err != nil {
		return err
	}
	return h.rename(c.Context, a[0], a[1])
}

func profileAssign(c *cli.Context, h profileHost, a []string) error {
	profiles := []string{}
	if a[1] != "" {
		profiles = strings.Split(a[1], ",")
	}
	return h.assign(c.Context, a[0], profiles)
}

func networkCommand() *cli.Command {
	return &cli.Command{
		Name:  "network",
		Usage: "manage networks: bridges with their subnets, NAT, DHCP and DNS",
		Subcommands: []*cli.Command{
			{Name: "create", Usage: "make a network (ipv4.address=auto|none|CIDR ipv4.nat=true|false ipv6.address=... ipv6.nat=... dns.domain=silo)",
				ArgsUsage: "NAME [KEY=VALUE...]", Action: onNetworks(1, -1, networkCreate)},
			{Name: "list", Aliases: []string{"ls"}, Usage: "list networks", ArgsUsage: "[REMOTE:]", Flags: []cli.Flag{formatFlag}, Action: listOn(func(e *engine.Engine, _ context.Context) ([]*api.Network, error) { return e.Networks() }, (*client.Client).Networks, networkList)},
			{Name: "info", Aliases: []string{"show"}, Usage: "show a network and the addresses its instances hold", ArgsUsage: "NAME", Flags: []cli.Flag{formatFlag}, Action: onNetworks(1, 1, networkInfo)},
			{Name: "set", Usage: "set config keys of a network", ArgsUsage: "NAME KEY=VALUE...", Action: onNetworks(2, -1, networkSet)},
			{Name: "unset", Usage: "remove config keys of a network", ArgsUsage: "NAME KEY...", Action: onNetworks(2, -1, networkUnset)},
			{Name: "delete", Aliases: []string{"rm"}, Usage: "delete a network nothing uses, with every trace of it on the host", ArgsUsage: "NAME", Action: onNetworks(1, 1, networkDelete)},
		},
	}
}

// onNetworks runs a network command on this host's engine, or through the
// remote that its network argument names (h2:NAME), with between min and
// max positional arguments (max -1: any number).
func onNetworks(min, max int, fn func(c *cli.Context, h networkHost, a []string) error) cli.ActionFunc {
	return onHost(func(e *engine.Engine) networkHost { return localNetworks{e} }, func(cl *client.Client) networkHost { return remoteNetworks{cl} }, min, max, fn)
}

// keyValues reads KEY=VALUE arguments.
func keyValues(pairs []string) (map[string]string, error) {
	out := map[string]string{}
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			return nil, errkind.Wrap(errkind.Invalid, "%q: write key=value", p)
		}
		out[k] = v
	}
	return out, nil
}

func networkCreate(c *cli.Context, h networkHost, a []string) error {
	cfg, err := keyValues(a[1:])
	if err != nil {
		return err
	}
	if err := h.create(c.Context, a[0], cfg); err != nil {
		return err
	}
	fmt.Printf("Network %s created\n", a[0])
	return nil
}

func networkList(c *cli.Context, ns []*api.Network) error {
	var rows [][]string
	for _, n := range ns {
		rows = append(rows, []string{n.Name, orDash(n.Config["ipv4.address"]), orDash(n.Config["ipv6.address"]),
			n.Config["ipv4.nat"], strings.ToUpper(n.Status), fmt.Sprint(len(n.UsedBy))})
	}
	return output(c, ns, []string{"NAME", "IPV4", "IPV6", "NAT", "STATE", "USED BY"}, rows)
}

// networkWithLeases is what `network info` shows.
type networkWithLeases struct {
	api.Network
	Leases []api.NetworkLease `json:"leases"`
}

func networkInfo(c *cli.Context, h networkHost, a []string) error {
	n, leases, err := h.info(c.Context, a[0])
	if err != nil {
		return err
	}
	if c.String("format") == "json" {
		return output(c, networkWithLeases{*n, leases}, nil, nil)
	}
	var cfg []string
	for _, k := range slices.Sorted(maps.Keys(n.Config)) {
		cfg = append(cfg, k+"="+n.Config[k])
	}
	printTable(os.Stdout, []string{"Name:", n.Name}, fields("State", strings.ToLower(n.Status),
		"Config", strings.Join(cfg, ", "), "Used by", orDash(strings.Join(n.UsedBy, ", ")), "Created", when(n.CreatedAt)))
	fmt.Println()
	var rows [][]string
	for _, l := range leases {
		rows = append(rows, []string{l.Hostname, l.Device, l.Hwaddr, l.Address})
	}
	printTable(os.Stdout, []string{"INSTANCE", "DEVICE", "MAC", "ADDRESS"}, rows)
	return nil
}

func networkSet(c *cli.Context, h networkHost, a []string) error {
	cfg, err := keyValues(a[1:])
	if err != nil {
		return err
	}
	return h.update(c.Context, a[0], cfg, nil)
}

func networkUnset(c *cli.Context, h networkHost, a []string) error {
	return h.update(c.Context, a[0], nil, a[1:])
}

func networkDelete(c *cli.Context, h networkHost, a []string) error {
	if err := h.remove(c.Context, a[0]); err != nil {
		return err
	}
	fmt.Printf("Network %s deleted\n", a[0])
	return nil
}

// onName is the action of a command that takes one name, acts on it with
// fn and says so with done ("Profile %s deleted").
func onName(fn func(c *cli.Context, e *engine.Engine, name string) error, done string) cli.ActionFunc {
	return withEngine(func(c *cli.Context, e *engine.Engine) error {
		a, err := args(c, 1, 1)
		if err != nil {
			return err
		}
		if err := fn(c, e, a[0]); err != nil {
			return err
		}
		fmt.Printf(done+"\n", a[0])
		return nil
	})
}
