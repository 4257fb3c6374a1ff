package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/silo-dev/silo/api"
	"github.com/silo-dev/silo/client"
	"github.com/silo-dev/silo/engine"
	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/internal/trust"
	"github.com/silo-dev/silo/server"
)

// trustCommand manages the client certificates the server trusts.
func trustCommand() *cli.Command {
	return &cli.Command{
		Name:  "trust",
		Usage: "manage the clients the server trusts",
		Subcommands: []*cli.Command{
			{Name: "add", Usage: "print a one-time token that lets a client called NAME in (silo remote add ... --token)", ArgsUsage: "[REMOTE:]NAME", Action: onRemote(0, trustAdd, trustAddRemote)},
			{Name: "add-certificate", Usage: "trust a client certificate file (PEM)", ArgsUsage: "NAME FILE", Action: withEngine(trustAddCert)},
			{Name: "list", Aliases: []string{"ls"}, Usage: "list the trusted clients", ArgsUsage: "[REMOTE:]", Flags: []cli.Flag{formatFlag}, Action: listOn((*engine.Engine).Trusted, (*client.Client).Certificates, trustList)},
			{Name: "remove", Aliases: []string{"rm"}, Usage: "stop trusting a client", ArgsUsage: "[REMOTE:]NAME|FINGERPRINT", Action: onRemote(0, trustRemove, trustRemoveRemote)},
			{Name: "list-tokens", Usage: "list the trust tokens not yet used", Flags: []cli.Flag{formatFlag}, Action: withEngine(trustListTokens)},
			{Name: "revoke-token", Usage: "revoke the unused trust tokens of a client", ArgsUsage: "NAME", Action: withEngine(trustRevokeToken)},
		},
	}
}

func trustAdd(c *cli.Context, e *engine.Engine) error {
	a, err := args(c, 1, 1)
	if err != nil {
		return err
	}
	tok, err := e.CreateTrustToken(c.Context, a[0])
	if err != nil {
		return err
	}
	printToken(tok)
	return nil
}

func trustAddRemote(c *cli.Context, cl *client.Client, a []string) error {
	a, err := exactly(c, a, 1, 1)
	if err != nil {
		return err
	}
	tok, err := cl.CreateTrustToken(c.Context, a[0])
	if err != nil {
		return err
	}
	printToken((*trust.Token)(tok))
	return nil
}

func printToken(tok *trust.Token) {
	if len(tok.Addresses) == 0 {
		fmt.Fprintf(os.Stderr, "silo: warning: %s is not set: the server does not listen for remotes yet\n", engine.KeyHTTPSAddress)
	}
	fmt.Printf("Client %s token:\n%s\n", tok.ClientName, tok)
}

func trustAddCert(c *cli.Context, e *engine.Engine) error {
	a, err := args(c, 2, 2)
	if err != nil {
		return err
	}
	cert, err := trust.ReadCert(a[1])
	if err != nil {
		return err
	}
	added, err := e.AddTrusted(c.Context, a[0], cert)
	if err != nil {
		return err
	}
	fmt.Printf("Client %s trusted (%.12s)\n", added.Name, added.Fingerprint)
	return nil
}

func trustList(c *cli.Context, certs []*api.Certificate) error {
	var rows [][]string
	for _, t := range certs {
		rows = append(rows, []string{t.Name, t.Type, t.Fingerprint[:12], when(t.AddedAt)})
	}
	return output(c, certs, []string{"NAME", "TYPE", "FINGERPRINT", "ADDED"}, rows)
}

func trustRemove(c *cli.Context, e *engine.Engine) error {
	a, err := args(c, 1, 1)
	if err != nil {
		return err
	}
	removed, err := e.RemoveTrusted(c.Context, a[0])
	if err != nil {
		return err
	}
	fmt.Printf("Client %s no longer trusted (%.12s)\n", removed.Name, removed.Fingerprint)
	return nil
}

// serverConfigSet sets server keys, written as lxc takes them: KEY VALUE,
// or KEY=VALUE pairs.
func serverConfigSet(c *cli.Context, e *engine.Engine, a []string) error {
	set := map[string]string{}
	if len(a) == 2 && !strings.Contains(a[0], "=") {
		set[a[0]] = a[1]
	} else {
		for _, p := range a {
			k, v, ok := strings.Cut(p, "=")
			if !ok {
				return errkind.Wrap(errkind.Invalid, "config %q: write KEY VALUE or KEY=VALUE", p)
			}
			set[k] = v
		}
	}
	for k := range set {
		if !engine.IsServerKey(k) {
			return errkind.Wrap(errkind.Invalid, "%q is not a server key: instance keys follow the instance's name", k)
		}
	}
	return e.SetServerConfig(c.Context, set, nil)
}

func serverConfigUnset(c *cli.Context, e *engine.Engine, keys []string) error {
	for _, k := range keys {
		if !engine.IsServerKey(k) {
			return errkind.Wrap(errkind.Invalid, "%q is not a server key: instance keys follow the instance's name", k)
		}
	}
	return e.SetServerConfig(c.Context, nil, keys)
}

// configGet prints one key of the server (KEY) or of an instance (NAME KEY).
func configGet(c *cli.Context, e *engine.Engine) error {
	a, err := args(c, 1, 2)
	if err != nil {
		return err
	}
	var cfg map[string]string
	key := a[0]
	if a[1] == "" {
		if !engine.IsServerKey(key) {
			return errkind.Wrap(errkind.Invalid, "%q is not a server key: write silo config get NAME KEY for an instance's", key)
		}
		cfg, err = e.ServerConfig(c.Context)
	} else {
		key = a[1]
		i, ierr := e.Instance(c.Context, a[0])
		if ierr != nil {
			return ierr
		}
		cfg = i.Config
	}
	if err != nil {
		return err
	}
	fmt.Println(cfg[key])
	return nil
}

// serverConfigShow prints the server's keys, as `lxc config show` does.
func serverConfigShow(c *cli.Context, e *engine.Engine) error {
	cfg, err := e.ServerConfig(c.Context)
	if err != nil {
		return err
	}
	type shown struct {
		Config map[string]string `json:"config" yaml:"config"`
	}
	return outputYAML(c, shown{Config: cfg})
}

// serveHTTPS serves remotes on core.https_address, and follows its
// changes while the server runs.
func serveHTTPS(c *cli.Context, srv *server.Server) error {
	h, err := srv.ListenHTTPS(c.Context)
	if err != nil {
		return err
	}
	if h.Addr() != "" {
		fmt.Printf("Serving the API on https://%s\n", h.Addr())
	}
	go h.Follow(c.Context, time.Second)
	return nil
}

func trustListTokens(c *cli.Context, e *engine.Engine) error {
	toks, err := e.PendingTokens(c.Context)
	if err != nil {
		return err
	}
	var rows [][]string
	for _, t := range toks {
		rows = append(rows, []string{t.ClientName, when(t.Created), when(t.ExpiresAt)})
	}
	return output(c, toks, []string{"NAME", "CREATED", "EXPIRES"}, rows)
}

func trustRevokeToken(c *cli.Context, e *engine.Engine) error {
	a, err := args(c, 1, 1)
	if err != nil {
		return err
	}
	n, err := e.RevokeTokens(c.Context, a[0])
	if err != nil {
		return err
	}
	fmt.Printf("%d trust token(s) of %s revoked\n", n, a[0])
	return nil
}

func trustRemoveRemote(c *cli.Context, cl *client.Client, a []string) error {
	a, err := exactly(c, a, 1, 1)
	if err != nil {
		return err
	}
	if err := cl.DeleteCertificate(c.Context, a[0]); err != nil {
		return err
	}
	fmt.Printf("Client %s no longer trusted\n", a[0])
	return nil
}
