package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/remote"
)

func remoteCommand() *cli.Command {
	return &cli.Command{
		Name:  "remote",
		Usage: "manage the other silo hosts this client talks to (REMOTE: in front of a name)",
		Subcommands: []*cli.Command{
			{Name: "add", Usage: "trust this client on a server with a token from its `silo config trust add`, and pin the server's certificate",
				ArgsUsage: "NAME [https://HOST[:PORT] | TOKEN]", Flags: []cli.Flag{
					&cli.StringFlag{Name: "token", Usage: "the trust token the server printed (or give it in place of the address, as incus takes it)"},
				}, Action: withRemotes(remoteAdd)},
			{Name: "list", Aliases: []string{"ls"}, Usage: "list the remotes", Flags: []cli.Flag{formatFlag}, Action: withRemotes(remoteList)},
			{Name: "remove", Aliases: []string{"rm"}, Usage: "forget a remote", ArgsUsage: "NAME", Action: withRemotes(remoteRemove)},
			{Name: "rename", Usage: "rename a remote", ArgsUsage: "OLD NEW", Action: withRemotes(remoteRename)},
			{Name: "switch", Usage: "make a remote the default", ArgsUsage: "NAME", Action: withRemotes(remoteSwitch)},
			{Name: "get-default", Usage: "print the default remote", Action: withRemotes(func(c *cli.Context, cfg *remote.Config) error {
				fmt.Println(cfg.Default())
				return nil
			})},
		},
	}
}

// withRemotes loads the client's remotes for one action.
func withRemotes(fn func(c *cli.Context, cfg *remote.Config) error) cli.ActionFunc {
	return func(c *cli.Context) error {
		cfg, err := loadRemotes()
		if err != nil {
			return err
		}
		return fn(c, cfg)
	}
}

func loadRemotes() (*remote.Config, error) {
	dir, err := remote.Dir()
	if err != nil {
		return nil, err
	}
	return remote.Load(dir)
}

func remoteAdd(c *cli.Context, cfg *remote.Config) error {
	a, err := args(c, 1, 2)
	if err != nil {
		return err
	}
	addr, token := a[1], c.String("token")
	if token == "" {
		// incus remote add NAME TOKEN: the server is at the token's address.
		addr, token = "", a[1]
	}
	if token == "" {
		return errkind.Wrap(errkind.Invalid, "remote add %s: give the server's trust token, --token TOKEN", a[0])
	}
	if err := cfg.Add(c.Context, a[0], addr, token); err != nil {
		return err
	}
	fmt.Printf("Remote %s added (%s)\n", a[0], cfg.Remotes[a[0]].Addr)
	return nil
}

// remoteEntry is a remote as `remote list --format json` prints it.
type remoteEntry struct {
	Name     string `json:"name"`
	Addr     string `json:"addr"`
	Protocol string `json:"protocol"`
	Default  bool   `json:"default"`
}

func remoteList(c *cli.Context, cfg *remote.Config) error {
	var entries []remoteEntry
	var rows [][]string
	for _, name := range cfg.Names() {
		e := remoteEntry{Name: name, Addr: "unix://", Protocol: "silo", Default: name == cfg.Default()}
		if r, ok := cfg.Remotes[name]; ok {
			e.Addr, e.Protocol = r.Addr, r.Protocol
		}
		entries = append(entries, e)
		shown := name
		if e.Default {
			shown += " (current)"
		}
		rows = append(rows, []string{shown, e.Addr, e.Protocol})
	}
	return output(c, entries, []string{"NAME", "URL", "PROTOCOL"}, rows)
}

func remoteRemove(c *cli.Context, cfg *remote.Config) error {
	a, err := args(c, 1, 1)
	if err != nil {
		return err
	}
	if err := cfg.Remove(a[0]); err != nil {
		return err
	}
	fmt.Printf("Remote %s removed\n", a[0])
	return nil
}

func remoteSwitch(c *cli.Context, cfg *remote.Config) error {
	a, err := args(c, 1, 1)
	if err != nil {
		return err
	}
	if err := cfg.Switch(a[0]); err != nil {
		return err
	}
	fmt.Printf("Default remote: %s\n", a[0])
	return nil
}

func remoteRename(c *cli.Context, cfg *remote.Config) error {
	a, err := args(c, 2, 2)
	if err != nil {
		return err
	}
	if err := cfg.Rename(a[0], a[1]); err != nil {
		return err
	}
	fmt.Printf("Remote %s renamed %s\n", a[0], a[1])
	return nil
}
