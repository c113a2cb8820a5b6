package core

import (
	"sync"
	"sync/atomic"
)

// readGate is one incoming stream's permission to deliver. A revocation
// (of the peer's certificate, or of its team) closes the gate: from then
// on nothing of the stream is queued or passed to OnMessage, and the
// messages it already queued are purged, so a revoked peer delivers
// nothing once the revoking call returned.
type readGate struct {
	peer PeerID
	kind Kind
	team TeamID // for KindChannel

	mu      sync.Mutex
	revoked bool
	closed  atomic.Bool // revoked, readable without mu (the queue checks it under its own lock)
	// calls counts OnMessage calls in progress; idle is signalled when it
	// drops to zero after a revocation.
	calls int
	idle  *sync.Cond
	// stop ends the stream's reading; set before the gate is registered.
	stop func(code uint64)
}

func newReadGate(peer PeerID, kind Kind, team TeamID, stop func(code uint64)) *readGate {
	g := &readGate{peer: peer, kind: kind, team: team, stop: stop}
	g.idle = sync.NewCond(&g.mu)
	return g
}

// open reports whether the stream may still deliver.
func (g *readGate) open() bool { return g == nil || !g.closed.Load() }

// enter starts one OnMessage call; false when the gate is closed.
func (g *readGate) enter() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.revoked {
		return false
	}
	g.calls++
	return true
}

// leave ends a call enter started.
func (g *readGate) leave() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls--
	if g.calls == 0 && g.revoked {
		g.idle.Broadcast()
	}
}

// revoke closes the gate and stops the stream's reading with code; it
// reports whether this call closed it.
func (g *readGate) revoke(code uint64) bool {
	g.mu.Lock()
	first := !g.revoked
	g.revoked = true
	g.closed.Store(true)
	g.mu.Unlock()
	if first {
		g.stop(code)
	}
	return first
}

// waitCalls waits for the OnMessage calls that started before revoke.
func (g *readGate) waitCalls() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for g.calls > 0 {
		g.idle.Wait()
	}
}
