package core

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Congestion controllers a Config may name.
const (
	CongestionReno = "reno"
	CongestionBBR2 = "bbr2"
)

// ccChoices maps an endpoint's local socket address to its choice, for the
// quic-go hook, which learns of a new connection only by its addresses.
var ccChoices sync.Map // string -> *ccState

// ccState is one endpoint's congestion-control choice and what its
// connections actually got.
type ccState struct {
	want string
	used atomic.Pointer[string] // set when a connection's controller is made

	// made holds the controllers the hook built, by remote address, until
	// the connection they belong to claims its own.
	mu   sync.Mutex
	made map[string]*ccRecord
}

// ccRecord is what one connection's congestion controller is, and what
// it last saw in flight (-1: it does not say).
type ccRecord struct {
	name     string
	inFlight atomic.Int64
	at       time.Time
}

// ccRecordTTL bounds how long an unclaimed record is kept: a connection
// claims its record within its handshake, and records of handshakes that
// failed must not pile up.
const ccRecordTTL = time.Minute

// record keeps what the hook built for a connection to remote.
func (s *ccState) record(remote net.Addr, name string) *ccRecord {
	r := &ccRecord{name: name, at: time.Now()}
	r.inFlight.Store(-1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.made == nil {
		s.made = make(map[string]*ccRecord)
	}
	if len(s.made) >= 64 {
		for k, old := range s.made {
			if r.at.Sub(old.at) > ccRecordTTL {
				delete(s.made, k)
			}
		}
	}
	s.made[remote.String()] = r
	return r
}

// claim takes the record of the connection to remote; nil when the hook
// built nothing for it, so it runs quic-go's own NewReno.
func (s *ccState) claim(remote net.Addr) *ccRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := remote.String()
	r := s.made[key]
	delete(s.made, key)
	return r
}

// algorithm is what the connection runs.
func (r *ccRecord) algorithm() string {
	if r == nil {
		return CongestionReno
	}
	return r.name
}

// bytesInFlight is what the controller last saw in flight; false when it
// does not report it.
func (r *ccRecord) bytesInFlight() (uint64, bool) {
	if r == nil {
		return 0, false
	}
	n := r.inFlight.Load()
	return uint64(max(n, 0)), n >= 0
}

// resolveCongestion validates the configured name and picks the default:
// BBRv2 where the quic-go hook is built in (make lib), NewReno otherwise.
func resolveCongestion(name string) (string, error) {
	switch name {
	case "":
		if congestionHookAvailable {
			return CongestionBBR2, nil
		}
		return CongestionReno, nil
	case CongestionReno:
		return name, nil
	case CongestionBBR2:
		if !congestionHookAvailable {
			return "", fmt.Errorf("%w: congestion control %q needs the quic-go hook, which this build lacks (build with make lib)", ErrInvalidConfig, name)
		}
		return name, nil
	default:
		return "", fmt.Errorf("%w: unknown congestion control %q (want %q or %q)", ErrInvalidConfig, name, CongestionReno, CongestionBBR2)
	}
}

// congestionInUse is what the endpoint's connections use: what the hook
// made for them, or, before any connection or without the hook, what
// quic-go will use.
func (s *ccState) inUse() string {
	if p := s.used.Load(); p != nil {
		return *p
	}
	if !congestionHookAvailable {
		return CongestionReno
	}
	return s.want
}

// CongestionHookAvailable reports whether this build routes quic-go's
// congestion controller through aranya-quic's hook (build tag aranya_cc,
// set by make lib); without it quic-go's NewReno is used.
func CongestionHookAvailable() bool { return congestionHookAvailable }
