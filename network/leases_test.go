package network

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The tests read what dnsmasq leased, to check that a DHCP client got the
// address silo fixed for its MAC.

// Lease is a DHCP lease that dnsmasq has given.
type Lease struct {
	Expiry   time.Time // zero: it never expires
	MAC      net.HardwareAddr
	Addr     netip.Addr
	Hostname string // "" if the client gave none and silo set none
}

// Leases reads the leases that the dnsmasq of the network in dir has
// given. No file means no leases.
func Leases(dir string) ([]Lease, error) {
	f, err := os.Open(filepath.Join(dir, leasesFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var leases []Lease
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "EXPIRY MAC ADDRESS HOSTNAME CLIENT-ID"; DHCPv6 leases have an
		// IAID where the MAC is, and follow a "duid" line: neither parses
		// as a MAC.
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 {
			continue
		}
		mac, err := net.ParseMAC(fields[1])
		if err != nil {
			continue
		}
		addr, err := netip.ParseAddr(fields[2])
		if err != nil {
			return nil, fmt.Errorf("%s: bad address in %q", f.Name(), sc.Text())
		}
		expiry, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: bad expiry in %q", f.Name(), sc.Text())
		}
		l := Lease{MAC: mac, Addr: addr}
		if expiry != 0 {
			l.Expiry = time.Unix(expiry, 0)
		}
		if fields[3] != "*" {
			l.Hostname = fields[3]
		}
		leases = append(leases, l)
	}
	return leases, sc.Err()
}
