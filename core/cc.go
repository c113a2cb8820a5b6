package core

import (
	"fmt"
	"sync"
	"sync/atomic"
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
