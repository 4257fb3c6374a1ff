package network

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// A network's rules live in two tables named silo_BRIDGE: one of the inet
// family (what the host lets in, forwards, NATs and redirects) and, when a
// nic is filtered, one of the bridge family (what frames a nic may send
// into the bridge: frames from one instance to another are bridged, and
// reach the inet family only where br_netfilter is on). Ensure rebuilds
// both in one batch, which the kernel applies as one transaction: there
// is never a moment with half of them, or none.
//
// The first rule of the inet table's forward chain, and of the bridge
// table's prerouting chain, carries a stamp of the state they were built
// from, so that Ensure can tell with one read that nothing changed.

// rulesLayout names the shape of what buildRules makes, and is part of
// the stamp: bump it whenever that shape changes, so that the tables of
// an older silo are rebuilt.
const rulesLayout = "2"

const (
	ipsDstNAT     = 0x20 // IPS_DST_NAT, the conntrack status bit of a DNATed connection
	bridgeFilter  = -200 // NF_BR_PRI_FILTER_BRIDGED
	chainForward  = "forward"
	chainBridgeIn = "prerouting"
)

var loopback4 = netip.MustParsePrefix("127.0.0.0/8")

func tableName(bridge string) string { return "silo_" + bridge }

func tables(bridge string) (inet, br *nftables.Table) {
	return &nftables.Table{Family: nftables.TableFamilyINet, Name: tableName(bridge)},
		&nftables.Table{Family: nftables.TableFamilyBridge, Name: tableName(bridge)}
}

func rulesStamp(n Net) string {
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s|%s|%s|%t|%s|%t|%v|%v",
		rulesLayout, n.Bridge, n.IPv4, n.IPv4NAT, n.IPv6, n.IPv6NAT, n.Filters, n.Forwards)))
	return "silo " + hex.EncodeToString(sum[:8])
}

// ensureRules rebuilds the network's tables unless their stamps say that
// they already hold n. fresh says that there was no table of silo's.
func ensureRules(n Net) (rebuilt, fresh bool, err error) {
	c, err := nftables.New()
	if err != nil {
		return false, false, fmt.Errorf("nftables: %w", err)
	}
	inet, br := tables(n.Bridge)
	stamp := rulesStamp(n)
	got := stampOf(c, inet, chainForward)
	if got == stamp && (len(n.Filters) == 0 || stampOf(c, br, chainBridgeIn) == stamp) {
		return false, false, nil
	}
	if err := buildRules(c, n, stamp); err != nil {
		return false, false, err
	}
	if err := c.Flush(); err != nil {
		return false, false, fmt.Errorf("nftables: apply the rules of bridge %s: %w", n.Bridge, err)
	}
	return true, got == "", nil
}

// stampOf reads the stamp of table t: the comment on the first rule of
// its chain; "" if there is none, or no such table. A failure to read
// makes no stamp either: the rebuild that follows then reports it.
func stampOf(c *nftables.Conn, t *nftables.Table, chain string) string {
	rules, err := c.GetRules(t, &nftables.Chain{Name: chain, Table: t})
	if err != nil || len(rules) == 0 {
		return ""
	}
	s, _ := userdata.GetString(rules[0].UserData, userdata.TypeComment)
	return s
}

// deleteRules deletes both tables of the network, if they are there.
func deleteRules(bridge string) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	queueDelete(c, bridge)
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: delete the rules of bridge %s: %w", bridge, err)
	}
	return nil
}

// queueDelete queues, on c, the deletion of both tables of the network.
func queueDelete(c *nftables.Conn, bridge string) {
	inet, br := tables(bridge)
	for _, t := range []*nftables.Table{inet, br} {
		// Adding first makes the delete succeed when the table is not there.
		c.AddTable(t)
		c.DelTable(t)
	}
}

// buildRules queues, on c, the replacement of both tables by what n needs.
func buildRules(c *nftables.Conn, n Net, stamp string) error {
	inet, br := tables(n.Bridge)
	queueDelete(c, n.Bridge)
	c.AddTable(inet)
	mark := userdata.AppendString(nil, userdata.TypeComment, stamp)

	// What dnsmasq serves, and forwarding to and from the bridge. An accept
	// here cannot overrule a drop in a table of the host's own (every base
	// chain has its say), so these rules name what the network needs; a
	// host firewall that drops by default must let the same through.
	in := addChain(c, inet, "input", nftables.ChainTypeFilter, nftables.ChainHookInput, nftables.ChainPriorityFilter)
	type service struct {
		proto byte
		port  uint16
	}
	services := []service{{unix.IPPROTO_UDP, 53}, {unix.IPPROTO_TCP, 53}}
	if n.IPv4.IsValid() {
		services = append(services, service{unix.IPPROTO_UDP, 67})
	}
	if n.IPv6.IsValid() {
		services = append(services, service{unix.IPPROTO_UDP, 547})
	}
	for _, s := range services {
		addRule(c, in, nil, iif(expr.CmpOpEq, n.Bridge), l4proto(s.proto), field(expr.PayloadBaseTransportHeader, 2, be16(s.port), expr.CmpOpEq), verdict(expr.VerdictAccept))
	}
	if n.IPv6.IsValid() {
		addRule(c, in, nil, iif(expr.CmpOpEq, n.Bridge), l4proto(unix.IPPROTO_ICMPV6), verdict(expr.VerdictAccept))
	}

	fwd := addChain(c, inet, chainForward, nftables.ChainTypeFilter, nftables.ChainHookForward, nftables.ChainPriorityFilter)
	addRule(c, fwd, mark, iif(expr.CmpOpEq, n.Bridge), verdict(expr.VerdictAccept))
	addRule(c, fwd, nil, oif(expr.CmpOpEq, n.Bridge), verdict(expr.VerdictAccept))

	if len(n.Forwards) > 0 {
		pre := addChain(c, inet, "dnat", nftables.ChainTypeNAT, nftables.ChainHookPrerouting, nftables.ChainPriorityNATDest)
		out := addChain(c, inet, "dnat_local", nftables.ChainTypeNAT, nftables.ChainHookOutput, nftables.ChainPriorityNATDest)
		for _, f := range n.Forwards {
			e := forwardExprs(f)
			addRule(c, pre, nil, e)
			addRule(c, out, nil, e)
		}
	}
	if hasForward4(n) {
		// route_localnet is on for the bridge: let no loopback address in from it.
		guard := addChain(c, inet, "guard", nftables.ChainTypeFilter, nftables.ChainHookPrerouting, nftables.ChainPriorityRaw)
		for _, off := range []uint32{12, 16} {
			addRule(c, guard, nil, iif(expr.CmpOpEq, n.Bridge), nfproto(unix.NFPROTO_IPV4), inPrefix(expr.PayloadBaseNetworkHeader, off, loopback4, expr.CmpOpEq), verdict(expr.VerdictDrop))
		}
	}

	var post *nftables.Chain
	masquerade := func(match ...[]expr.Any) {
		if post == nil {
			post = addChain(c, inet, "snat", nftables.ChainTypeNAT, nftables.ChainHookPostrouting, nftables.ChainPriorityNATSource)
		}
		addRule(c, post, nil, append(match, []expr.Any{&expr.Masq{}})...)
	}
	for _, fam := range []struct {
		subnet  netip.Prefix
		nat     bool
		nfproto byte
		saddr   uint32
	}{{n.IPv4, n.IPv4NAT, unix.NFPROTO_IPV4, 12}, {n.IPv6, n.IPv6NAT, unix.NFPROTO_IPV6, 8}} {
		if !fam.subnet.IsValid() {
			continue
		}
		subnet := fam.subnet.Masked()
		if fam.nat {
			// Not what the host sends to itself (through lo) from its address
			// on the bridge: masquerading gives that another of the host's
			// addresses, and a UDP service answers it from the address its
			// route picks, which conntrack then takes for a new flow.
			masquerade(nfproto(fam.nfproto), inPrefix(expr.PayloadBaseNetworkHeader, fam.saddr, subnet, expr.CmpOpEq),
				oif(expr.CmpOpNeq, n.Bridge), oif(expr.CmpOpNeq, "lo"))
		}
		if hasForward(n, fam.subnet.Addr().Is4()) {
			// Hairpin: an instance that reaches a forward to an instance on
			// its own bridge would get the answer straight from it, from an
			// address it did not talk to.
			masquerade(oif(expr.CmpOpEq, n.Bridge), dnatted(), nfproto(fam.nfproto), inPrefix(expr.PayloadBaseNetworkHeader, fam.saddr, subnet, expr.CmpOpEq))
		}
	}
	if hasForward4(n) {
		// The host itself through 127.0.0.1: the instance cannot answer a
		// loopback address.
		masquerade(oif(expr.CmpOpEq, n.Bridge), dnatted(), nfproto(unix.NFPROTO_IPV4), inPrefix(expr.PayloadBaseNetworkHeader, 12, loopback4, expr.CmpOpEq))
	}

	if len(n.Filters) == 0 {
		return nil
	}
	c.AddTable(br)
	pre := addChain(c, br, chainBridgeIn, nftables.ChainTypeFilter, nftables.ChainHookPrerouting, nftables.ChainPriorityRef(bridgeFilter))
	// Interface names are host-endian strings to nft, which prints them so.
	nics := &nftables.Set{Table: br, Name: "nics", KeyType: nftables.TypeIFName, KeyByteOrder: binaryutil.NativeEndian, DataType: nftables.TypeVerdict, IsMap: true}
	var elems []nftables.SetElement
	for _, f := range n.Filters {
		ch := c.AddChain(&nftables.Chain{Name: "nic_" + f.HostName, Table: br})
		nicFilterRules(c, ch, f)
		elems = append(elems, nftables.SetElement{Key: ifname(f.HostName), VerdictData: &expr.Verdict{Kind: expr.VerdictJump, Chain: ch.Name}})
	}
	if err := c.AddSet(nics, elems); err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	addRule(c, pre, mark, []expr.Any{
		&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
		&expr.Lookup{SourceRegister: 1, SetName: nics.Name, SetID: nics.ID, IsDestRegSet: true, DestRegister: 0},
	})
	return nil
}

// nicFilterRules fills a nic's chain in the bridge table: every frame
// from its veth comes through it, whether bound for the host or for
// another port.
func nicFilterRules(c *nftables.Conn, ch *nftables.Chain, f Filter) {
	drop := verdict(expr.VerdictDrop)
	arp := field(expr.PayloadBaseLLHeader, 12, be16(unix.ETH_P_ARP), expr.CmpOpEq)
	ip4 := field(expr.PayloadBaseLLHeader, 12, be16(unix.ETH_P_IP), expr.CmpOpEq)
	ip6 := field(expr.PayloadBaseLLHeader, 12, be16(unix.ETH_P_IPV6), expr.CmpOpEq)
	icmp6 := func(typ byte) []expr.Any {
		return append(l4proto(unix.IPPROTO_ICMPV6), field(expr.PayloadBaseTransportHeader, 0, []byte{typ}, expr.CmpOpEq)...)
	}
	const routerAdvert, neighbourAdvert = 134, 136
	if f.MACFiltering {
		mac := []byte(f.MAC)
		addRule(c, ch, nil, field(expr.PayloadBaseLLHeader, 6, mac, expr.CmpOpNeq), drop)
		addRule(c, ch, nil, arp, field(expr.PayloadBaseNetworkHeader, 8, mac, expr.CmpOpNeq), drop)
		// A neighbour advertisement whose target link-layer address
		// option (type 2, first after the 24-byte header) is not its own.
		addRule(c, ch, nil, ip6, icmp6(neighbourAdvert), field(expr.PayloadBaseTransportHeader, 24, []byte{2}, expr.CmpOpEq),
			field(expr.PayloadBaseTransportHeader, 26, mac, expr.CmpOpNeq), drop)
	}
	if f.IPv4Filtering {
		unspecified := netip.IPv4Unspecified()
		// DHCP's discover and request come from 0.0.0.0.
		addRule(c, ch, nil, ip4, field(expr.PayloadBaseNetworkHeader, 12, unspecified.AsSlice(), expr.CmpOpEq),
			l4proto(unix.IPPROTO_UDP), field(expr.PayloadBaseTransportHeader, 2, be16(67), expr.CmpOpEq), verdict(expr.VerdictAccept))
		// An ARP probe (RFC 5227) claims no address: its sender is 0.0.0.0.
		addRule(c, ch, nil, arp, notAddr(expr.PayloadBaseNetworkHeader, 14, f.IPv4), field(expr.PayloadBaseNetworkHeader, 14, unspecified.AsSlice(), expr.CmpOpNeq), drop)
		addRule(c, ch, nil, ip4, notAddr(expr.PayloadBaseNetworkHeader, 12, f.IPv4), drop)
	}
	if f.IPv6Filtering {
		linkLocal := netip.MustParsePrefix("fe80::/10")
		addRule(c, ch, nil, ip6, icmp6(routerAdvert), drop)
		// Duplicate address detection and router solicitation come from
		// :: and from link-local addresses.
		addRule(c, ch, nil, ip6, notAddr(expr.PayloadBaseNetworkHeader, 8, f.IPv6),
			field(expr.PayloadBaseNetworkHeader, 8, netip.IPv6Unspecified().AsSlice(), expr.CmpOpNeq),
			inPrefix(expr.PayloadBaseNetworkHeader, 8, linkLocal, expr.CmpOpNeq), drop)
		addRule(c, ch, nil, ip6, icmp6(neighbourAdvert), notAddr(expr.PayloadBaseTransportHeader, 8, f.IPv6),
			inPrefix(expr.PayloadBaseTransportHeader, 8, linkLocal, expr.CmpOpNeq), drop)
	}
}

// forwardExprs matches a forward's packets to a local address and DNATs
// them to its target.
func forwardExprs(f Forward) []expr.Any {
	fam, daddr := byte(unix.NFPROTO_IPV4), uint32(16)
	if f.Listen.Addr().Is6() {
		fam, daddr = unix.NFPROTO_IPV6, 24
	}
	proto := byte(unix.IPPROTO_TCP)
	if f.Proto == "udp" {
		proto = unix.IPPROTO_UDP
	}
	e := nfproto(fam)
	if f.Listen.Addr().IsUnspecified() {
		e = append(e, &expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
			cmp(expr.CmpOpEq, binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)))
	} else {
		e = append(e, field(expr.PayloadBaseNetworkHeader, daddr, f.Listen.Addr().AsSlice(), expr.CmpOpEq)...)
	}
	e = append(e, l4proto(proto)...)
	e = append(e, field(expr.PayloadBaseTransportHeader, 2, be16(f.Listen.Port()), expr.CmpOpEq)...)
	return append(e,
		&expr.Immediate{Register: 1, Data: f.Target.Addr().AsSlice()},
		&expr.Immediate{Register: 2, Data: be16(f.Target.Port())},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: uint32(fam), RegAddrMin: 1, RegProtoMin: 2, Specified: true})
}

func hasForward(n Net, ipv4 bool) bool {
	for _, f := range n.Forwards {
		if f.Target.Addr().Is4() == ipv4 {
			return true
		}
	}
	return false
}

func hasForward4(n Net) bool { return hasForward(n, true) }

func addChain(c *nftables.Conn, t *nftables.Table, name string, typ nftables.ChainType, hook *nftables.ChainHook, prio *nftables.ChainPriority) *nftables.Chain {
	return c.AddChain(&nftables.Chain{Name: name, Table: t, Type: typ, Hooknum: hook, Priority: prio})
}

// addRule appends a rule made of the parts' expressions to ch, with mark
// as its comment when it is not nil.
func addRule(c *nftables.Conn, ch *nftables.Chain, mark []byte, parts ...[]expr.Any) {
	var e []expr.Any
	for _, p := range parts {
		e = append(e, p...)
	}
	c.AddRule(&nftables.Rule{Table: ch.Table, Chain: ch, Exprs: e, UserData: mark})
}

func cmp(op expr.CmpOp, data []byte) *expr.Cmp {
	return &expr.Cmp{Op: op, Register: 1, Data: data}
}

func iif(op expr.CmpOp, name string) []expr.Any {
	return []expr.Any{&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1}, cmp(op, ifname(name))}
}

func oif(op expr.CmpOp, name string) []expr.Any {
	return []expr.Any{&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1}, cmp(op, ifname(name))}
}

func nfproto(fam byte) []expr.Any {
	return []expr.Any{&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1}, cmp(expr.CmpOpEq, []byte{fam})}
}

func l4proto(proto byte) []expr.Any {
	return []expr.Any{&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, cmp(expr.CmpOpEq, []byte{proto})}
}

// dnatted matches the packets of connections that a DNAT rule redirected.
func dnatted() []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATUS},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: binaryutil.NativeEndian.PutUint32(ipsDstNAT), Xor: make([]byte, 4)},
		cmp(expr.CmpOpNeq, make([]byte, 4)),
	}
}

// field compares len(data) bytes at off from base with data.
func field(base expr.PayloadBase, off uint32, data []byte, op expr.CmpOp) []expr.Any {
	return []expr.Any{
		&expr.Payload{OperationType: expr.PayloadLoad, DestRegister: 1, Base: base, Offset: off, Len: uint32(len(data))},
		cmp(op, data),
	}
}

// inPrefix compares the address at off from base with the prefix p: op
// Eq matches when it is inside, Neq when outside.
func inPrefix(base expr.PayloadBase, off uint32, p netip.Prefix, op expr.CmpOp) []expr.Any {
	size := uint32(p.Addr().BitLen() / 8)
	mask := ipNet(p).Mask
	return []expr.Any{
		&expr.Payload{OperationType: expr.PayloadLoad, DestRegister: 1, Base: base, Offset: off, Len: size},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: size, Mask: mask, Xor: make([]byte, size)},
		cmp(op, p.Masked().Addr().AsSlice()),
	}
}

// notAddr matches when the address at off is not a, and always when a is
// not valid: a filtered nic without an address in a family owns none.
func notAddr(base expr.PayloadBase, off uint32, a netip.Addr) []expr.Any {
	if !a.IsValid() {
		return nil
	}
	return field(base, off, a.AsSlice(), expr.CmpOpNeq)
}

func verdict(kind expr.VerdictKind) []expr.Any {
	return []expr.Any{&expr.Verdict{Kind: kind}}
}

// ifname is an interface name as nftables compares it: IFNAMSIZ bytes,
// zero-padded.
func ifname(name string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return b
}

func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
