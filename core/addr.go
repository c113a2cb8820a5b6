package core

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// ParseAddr parses "ip:port" or "[ipv6]:port". Host names are not
// accepted: a channel is keyed by the address the peer listens on. The
// port must be written canonically (no leading zeros), because two
// spellings of one port would otherwise look like two peers to anything
// that compares the strings.
func ParseAddr(s string) (netip.AddrPort, error) {
	ap, err := parseAddrPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%w: %q: %w", ErrBadAddress, s, err)
	}
	if ap.Port() == 0 {
		return netip.AddrPort{}, fmt.Errorf("%w: %q: port 0", ErrBadAddress, s)
	}
	if why := peerAddrProblem(ap); why != "" {
		return netip.AddrPort{}, fmt.Errorf("%w: %q: %s", ErrBadAddress, s, why)
	}
	return normalize(ap), nil
}

// parseAddrPort is netip.ParseAddrPort, which accepts leading zeros in the
// port ("0080"), with the port held to its canonical decimal form.
func parseAddrPort(s string) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.AddrPort{}, err
	}
	// netip splits at the last colon too, so this is the port it parsed.
	port := s[strings.LastIndexByte(s, ':')+1:]
	if !canonicalPort(port) {
		return netip.AddrPort{}, fmt.Errorf("port %q is not canonical decimal (0..65535 without sign or leading zeros)", port)
	}
	return ap, nil
}

// canonicalPort reports whether a port that netip accepted has no sign and
// no leading zero. It looks at the text byte by byte: the C API parses
// the caller's string in place, and a string comparison may read whole
// words past its end, which memory checkers in the host report.
func canonicalPort(port string) bool {
	if port == "" || (len(port) > 1 && port[0] == '0') {
		return false
	}
	for i := 0; i < len(port); i++ {
		if port[i] < '0' || port[i] > '9' {
			return false
		}
	}
	return true
}

func checkPeerAddr(ap netip.AddrPort) error {
	switch {
	case !ap.IsValid():
		return fmt.Errorf("%w: invalid address", ErrBadAddress)
	case ap.Port() == 0:
		return fmt.Errorf("%w: %s: port 0", ErrBadAddress, ap)
	}
	if why := peerAddrProblem(ap); why != "" {
		return fmt.Errorf("%w: %s: %s", ErrBadAddress, ap, why)
	}
	return nil
}

// peerAddrProblem says why a peer cannot be reached at ap's address, or ""
// if it can.
func peerAddrProblem(ap netip.AddrPort) string {
	// IsUnspecified does not see through an IPv4-mapped address (the other
	// predicates do), and normalize would turn ::ffff:0.0.0.0 into 0.0.0.0.
	a := ap.Addr().Unmap()
	switch {
	case a.IsUnspecified(), a.IsMulticast(), a == ipv4Broadcast:
		return "not a unicast address"
	case ap.Addr().Zone() != "":
		return "zoned addresses are not supported"
	}
	return ""
}

var ipv4Broadcast = netip.AddrFrom4([4]byte{255, 255, 255, 255})

// normalize makes the map key of an address: an IPv4-mapped IPv6
// address and its IPv4 form are the same peer.
func normalize(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// ParseBindAddr parses the local address to bind: an IP literal and port
// ("ip:port" or "[ipv6]:port", port 0 for any free port), unicast or
// unspecified.
//
// Multicast and broadcast addresses name groups, not an endpoint a peer
// can hold a connection with. Multicast has a second reason: Go's
// net.ListenUDP sets SO_REUSEADDR on a socket bound to a multicast
// address, which would let another process bind the same address and port
// and take a share of our datagrams; refusing them keeps SO_REUSEADDR off
// every socket the engine opens. Zones are refused because peers are keyed
// by zone-less addresses.
func ParseBindAddr(s string) (netip.AddrPort, error) {
	ap, err := parseAddrPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%w: bind address %q: %w", ErrBadAddress, s, err)
	}
	a := ap.Addr().Unmap()
	switch {
	case a.IsMulticast():
		return netip.AddrPort{}, fmt.Errorf("%w: bind address %q: multicast address cannot be bound", ErrBadAddress, s)
	case a == ipv4Broadcast:
		return netip.AddrPort{}, fmt.Errorf("%w: bind address %q: broadcast address cannot be bound", ErrBadAddress, s)
	case ap.Addr().Zone() != "":
		return netip.AddrPort{}, fmt.Errorf("%w: bind address %q: zoned addresses are not supported", ErrBadAddress, s)
	}
	return ap, nil
}

// isOwnAddr reports whether a datagram sent to `to` would arrive at a
// socket bound to local, so the engine can refuse to dial itself instead
// of handshaking with its own socket.
func isOwnAddr(local, to netip.AddrPort) bool {
	return hostAddrs.isOwn(local, to)
}

// hostAddrs caches this host's interface addresses: Send may ask for every
// message, and listing interfaces is a netlink round trip.
var hostAddrs = &hostAddrCache{lookup: net.InterfaceAddrs}

// hostAddrRefresh bounds how stale the cache is: an address added to an
// interface is seen within this long.
const hostAddrRefresh = time.Second

type hostAddrCache struct {
	lookup func() ([]net.Addr, error)

	mu    sync.Mutex
	at    time.Time // last lookup, successful or not
	addrs map[netip.Addr]struct{}
}

func (c *hostAddrCache) isOwn(local, to netip.AddrPort) bool {
	if !local.IsValid() || !to.IsValid() || local.Port() != to.Port() {
		return false
	}
	l, t := local.Addr().Unmap().WithZone(""), to.Addr().Unmap().WithZone("")
	if l == t {
		return true
	}
	if !l.IsUnspecified() {
		return false
	}
	// An IPv4 wildcard socket cannot receive IPv6. The IPv6 wildcard
	// receives both: the engine listens on "udp", for which Go makes the
	// [::] socket dual-stack (IPV6_V6ONLY off).
	if l.Is4() && !t.Is4() {
		return false
	}
	// Sending to 0.0.0.0 or :: reaches the local host on Linux.
	return t.IsLoopback() || t.IsUnspecified() || c.has(t)
}

func (c *hostAddrCache) has(a netip.Addr) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.at.IsZero() || time.Since(c.at) >= hostAddrRefresh {
		c.at = time.Now()
		// On failure the previous set stays: a stale answer beats
		// treating every address as foreign, and the next try waits out
		// the refresh interval instead of retrying on every send.
		if ifaddrs, err := c.lookup(); err == nil {
			set := make(map[netip.Addr]struct{}, len(ifaddrs))
			for _, ia := range ifaddrs {
				var ip net.IP
				switch v := ia.(type) {
				case *net.IPNet:
					ip = v.IP
				case *net.IPAddr:
					ip = v.IP
				}
				if x, ok := netip.AddrFromSlice(ip); ok {
					set[x.Unmap()] = struct{}{}
				}
			}
			c.addrs = set
		}
	}
	_, ok := c.addrs[a]
	return ok
}
