package engine

import (
	"github.com/silo-dev/silo/errkind"
	"github.com/silo-dev/silo/internal/store"
	"github.com/silo-dev/silo/network/proxy"
)

func checkProxy(name string, d store.Device, bad func(key, why string) error) error {
	for _, k := range []string{"listen", "connect"} {
		if d[k] == "" {
			return errkind.Wrap(errkind.Invalid, "device %s: a proxy needs %s=PROTO:ADDRESS:PORT", name, k)
		}
	}
	l, err := proxy.ParseEndpoint(d["listen"])
	if err != nil {
		return bad("listen", err.Error())
	}
	c, err := proxy.ParseEndpoint(d["connect"])
	if err != nil {
		return bad("connect", err.Error())
	}
	if l.Proto != c.Proto {
		return errkind.Wrap(errkind.Invalid, "device %s: listen is %s and connect %s: give one protocol", name, l.Proto, c.Proto)
	}
	if b := d["bind"]; b != "" && b != "host" {
		return bad("bind", "silo listens on the host only (bind=host)")
	}
	return nil
}
