package core

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Peer is a peer's address as an application names it: an IP address and
// port, or a host name and port that is resolved when it is used.
type Peer struct {
	addr netip.AddrPort // valid when the peer was named by address
	host string         // lower-case host name, when named by name
	port uint16
	// text is the address as the application wrote it, for the events
	// that name it; not part of the peer's identity (see key). It may be
	// a view of the caller's memory: it is copied when kept.
	text string
}

// key is the peer without its text: equal for every spelling of one
// address or name.
func (p Peer) key() Peer { return Peer{addr: p.addr, host: p.host, port: p.port} }

// WithText returns p remembering text as the way the application wrote
// its address (events about p report it). text is not copied: copy it
// first when p outlives the caller's memory.
func (p Peer) WithText(text string) Peer {
	p.text = text
	return p
}

// Given is the address as the application wrote it, when known, else its
// normal form.
func (p Peer) Given() string {
	if p.text != "" {
		return p.text
	}
	return p.String()
}

// PeerAt names a peer by its address.
func PeerAt(addr netip.AddrPort) Peer { return Peer{addr: normalize(addr)} }

// maxHostLen is the longest DNS name.
const maxHostLen = 253

// ParsePeer parses "ip:port", "[ipv6]:port" or "host:port". An IP literal
// is checked as ParseAddr checks it; a host name must be a valid DNS name
// (letters, digits, hyphens and dots, labels of 1 to 63 bytes).
func ParsePeer(s string) (Peer, error) {
	if ap, err := ParseAddr(s); err == nil {
		return Peer{addr: ap, text: s}, nil
	} else if !looksLikeHostPort(s) {
		return Peer{}, err
	}
	i := strings.LastIndexByte(s, ':')
	host, portText := s[:i], s[i+1:]
	if !canonicalPort(portText) {
		return Peer{}, fmt.Errorf("%w: %q: port %q is not canonical decimal", ErrBadAddress, s, portText)
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil || port == 0 {
		return Peer{}, fmt.Errorf("%w: %q: port must be 1..65535", ErrBadAddress, s)
	}
	if why := hostNameProblem(host); why != "" {
		return Peer{}, fmt.Errorf("%w: %q: %s", ErrBadAddress, s, why)
	}
	return Peer{host: strings.ToLower(strings.TrimSuffix(host, ".")), port: uint16(port), text: s}, nil
}

// looksLikeHostPort tells a host name with a port from a malformed IP
// literal, so that "1.2.3.999:80" keeps the address parser's error.
func looksLikeHostPort(s string) bool {
	i := strings.LastIndexByte(s, ':')
	if i <= 0 || strings.ContainsAny(s[:i], ":[]%") {
		return false
	}
	host := s[:i]
	for j := 0; j < len(host); j++ {
		if c := host[j]; (c < '0' || c > '9') && c != '.' {
			return true // a name has a character an IPv4 literal cannot
		}
	}
	return false
}

// hostNameProblem says why host is not a DNS name, or "".
func hostNameProblem(host string) string {
	host = strings.TrimSuffix(host, ".")
	if host == "" || len(host) > maxHostLen {
		return "host name must be 1 to 253 bytes"
	}
	for _, label := range strings.Split(host, ".") {
		if label == "" || len(label) > 63 {
			return "each part of a host name must be 1 to 63 bytes"
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return "a part of a host name cannot start or end with '-'"
		}
		for j := 0; j < len(label); j++ {
			c := label[j]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Sprintf("host name has the character %q", c)
			}
		}
	}
	return ""
}

// IsName reports whether the peer is named by a host name.
func (p Peer) IsName() bool { return p.host != "" }

// Addr is the peer's address when it was named by address.
func (p Peer) Addr() (netip.AddrPort, bool) { return p.addr, p.host == "" && p.addr.IsValid() }

// String is the peer as named: "host:port" or the address.
func (p Peer) String() string {
	if p.host != "" {
		return net.JoinHostPort(p.host, strconv.Itoa(int(p.port)))
	}
	return p.addr.String()
}

// HostResolver looks up a host's addresses; *net.Resolver is one.
type HostResolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// resolveCacheFor is how long a resolved address is reused. Go's resolver
// does not expose the record's TTL; this keeps a peer list's per-message
// sends from querying DNS each time while following a moved peer soon.
const resolveCacheFor = 30 * time.Second

// resolver turns host names into the address a connection is keyed by,
// caching answers.
type resolver struct {
	lookup  HostResolver
	timeout time.Duration
	local   netip.AddrPort // the socket's bound address: which families it reaches
	now     func() time.Time

	mu    sync.Mutex
	cache map[string]resolved
}

type resolved struct {
	addr    netip.Addr
	expires time.Time
}

func newResolver(lookup HostResolver, timeout time.Duration, local netip.AddrPort) *resolver {
	if lookup == nil {
		lookup = net.DefaultResolver
	}
	return &resolver{lookup: lookup, timeout: timeout, local: local, now: time.Now, cache: make(map[string]resolved)}
}

// cached returns the address of a peer named by address, or a fresh
// cached answer for a name, without blocking.
func (r *resolver) cached(p Peer) (netip.AddrPort, bool) {
	if ap, ok := p.Addr(); ok {
		return ap, true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if a, ok := r.cache[p.host]; ok && r.now().Before(a.expires) {
		return netip.AddrPortFrom(a.addr, p.port), true
	}
	return netip.AddrPort{}, false
}

// resolve returns the peer's address, looking its name up (bounded by the
// resolve timeout and ctx) when the cache has no fresh answer.
func (r *resolver) resolve(ctx context.Context, p Peer) (netip.AddrPort, error) {
	ap, fresh, err := r.lookupFresh(ctx, p)
	if err == nil && fresh {
		r.store(p, ap.Addr())
	}
	return ap, err
}

// lookupFresh is resolve without storing a new answer in the cache; fresh
// says the answer is new (store it with store).
func (r *resolver) lookupFresh(ctx context.Context, p Peer) (ap netip.AddrPort, fresh bool, err error) {
	if ap, ok := r.cached(p); ok {
		return ap, false, nil
	}
	ap, err = r.query(ctx, p)
	return ap, err == nil, err
}

func (r *resolver) query(ctx context.Context, p Peer) (netip.AddrPort, error) {
	lctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	addrs, err := r.lookup.LookupNetIP(lctx, "ip", p.host)
	if err != nil {
		if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return netip.AddrPort{}, fmt.Errorf("%w: resolving %q: %w", ErrClosed, p.host, err)
		}
		if lctx.Err() != nil {
			return netip.AddrPort{}, fmt.Errorf("%w: %q: no answer within %v: %w", ErrResolve, p.host, r.timeout, err)
		}
		return netip.AddrPort{}, fmt.Errorf("%w: %q: %w", ErrResolve, p.host, err)
	}
	a, ok := r.pick(addrs)
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("%w: %q has no unicast address this endpoint's socket (%s) can reach (got %v)", ErrResolve, p.host, r.local, addrs)
	}
	return netip.AddrPortFrom(a, p.port), nil
}

// store caches a name's answer.
func (r *resolver) store(p Peer, a netip.Addr) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.cache) >= maxResolveCache {
		clear(r.cache) // a bound, not a policy: names are few in practice
	}
	r.cache[p.host] = resolved{addr: a, expires: r.now().Add(resolveCacheFor)}
}

// maxResolveCache bounds the names cached.
const maxResolveCache = 4096

// pick chooses the first address the socket can send to: an IPv4 socket
// reaches only IPv4 peers, an IPv6 socket bound to a specific address only
// IPv6 ones, a socket bound to [::] both.
func (r *resolver) pick(addrs []netip.Addr) (netip.Addr, bool) {
	local := r.local.Addr()
	for _, a := range addrs {
		a = a.Unmap()
		if peerAddrProblem(netip.AddrPortFrom(a, 1)) != "" {
			continue
		}
		switch {
		case local.Is4() || local.Is4In6():
			if a.Is4() {
				return a, true
			}
		case local.IsUnspecified():
			return a, true
		default:
			if a.Is6() {
				return a, true
			}
		}
	}
	return netip.Addr{}, false
}
