package proxy

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/silo-dev/silo/errkind"
)

func TestParseEndpoint(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Endpoint
		network string
	}{
		{"tcp:0.0.0.0:8080", Endpoint{"tcp", netip.MustParseAddrPort("0.0.0.0:8080")}, "tcp4"},
		{"tcp:127.0.0.1:80", Endpoint{"tcp", netip.MustParseAddrPort("127.0.0.1:80")}, "tcp4"},
		{"udp:[::]:53", Endpoint{"udp", netip.MustParseAddrPort("[::]:53")}, "udp"},
		{"tcp:[::1]:80", Endpoint{"tcp", netip.MustParseAddrPort("[::1]:80")}, "tcp"},
		{"udp:10.1.2.3:65535", Endpoint{"udp", netip.MustParseAddrPort("10.1.2.3:65535")}, "udp4"},
	} {
		got, err := ParseEndpoint(tc.in)
		if err != nil {
			t.Errorf("ParseEndpoint(%q): %v", tc.in, err)
			continue
		}
		if got != tc.want || got.network() != tc.network {
			t.Errorf("ParseEndpoint(%q) = %+v on %s, want %+v on %s", tc.in, got, got.network(), tc.want, tc.network)
		}
		if got.String() != tc.in {
			t.Errorf("%q reads back as %q", tc.in, got.String())
		}
	}
	for _, in := range []string{
		"", "tcp", "tcp:", "sctp:1.2.3.4:80", "TCP:1.2.3.4:80", "1.2.3.4:80",
		"tcp:localhost:80", "tcp:1.2.3.4", "tcp:::1:80", "tcp:1.2.3.4:0",
		"tcp:1.2.3.4:65536", "tcp:1.2.3.4:80-90", "udp:[::1]", "tcp:1.2.3.4:http",
	} {
		_, err := ParseEndpoint(in)
		if !errors.Is(err, errkind.Invalid) {
			t.Errorf("ParseEndpoint(%q): %v, want an Invalid error", in, err)
		}
	}
}
