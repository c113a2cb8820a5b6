package core

import (
	"fmt"
	"net/netip"
)

// ParseAddr parses "ip:port" or "[ipv6]:port". Host names are not
// accepted: a channel is keyed by the address the peer listens on.
func ParseAddr(s string) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%w: %q: %w", ErrBadAddress, s, err)
	}
	if err := checkPeerAddr(ap); err != nil {
		return netip.AddrPort{}, err
	}
	return normalize(ap), nil
}

func checkPeerAddr(ap netip.AddrPort) error {
	a := ap.Addr()
	switch {
	case !ap.IsValid():
		return fmt.Errorf("%w: invalid address", ErrBadAddress)
	case ap.Port() == 0:
		return fmt.Errorf("%w: %s: port 0", ErrBadAddress, ap)
	case a.IsUnspecified(), a.IsMulticast(), a == netip.IPv4Unspecified(), a.Unmap() == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return fmt.Errorf("%w: %s: not a unicast address", ErrBadAddress, ap)
	case a.Zone() != "":
		return fmt.Errorf("%w: %s: zoned addresses are not supported", ErrBadAddress, ap)
	}
	return nil
}

// normalize makes the map key of an address: an IPv4-mapped IPv6
// address and its IPv4 form are the same peer.
func normalize(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// ParseBindAddr parses the local address to bind: an IP literal and port
// ("ip:port" or "[ipv6]:port", port 0 for any free port), unicast or
// unspecified.
func ParseBindAddr(s string) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%w: bind address %q: %w", ErrBadAddress, s, err)
	}
	return ap, nil
}
