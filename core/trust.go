package core

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"slices"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/aranya-quic/aranya-quic/core/wire"
)

// SetTrust atomically replaces the trusted CA certificates and the pins
// (nil pins: no pinning). New handshakes use the new set at once. Every
// connection whose peer's certificate no longer verifies is closed
// (connection code NOT_AUTHORIZED) before SetTrust returns: from then on
// nothing more of that peer reaches the receive queue, the messages it
// had queued that the application had not taken are dropped (counted in
// Stats.MessagesRevoked), no OnMessage call for it starts, and sends to it
// dial again and fail with ErrTLS. It waits for OnMessage calls of the
// revoked peers already in progress: from inside OnMessage use
// SetTrustFromCallback, which does not. It returns the ids of the peers it
// revoked (each once), so that an application can drop what it holds of
// them too: every peer admitted recently (the last 4096) that the new set
// no longer trusts, also one without a connection now. An input that does
// not parse changes nothing (ErrInvalidConfig).
func (e *Endpoint) SetTrust(caPEM []byte, pins []PeerID) ([]PeerID, error) {
	return e.setTrust(caPEM, pins, true)
}

// SetTrustFromCallback is SetTrust for use inside OnMessage: it does not
// wait for OnMessage calls in progress (its own would never end), so a
// call of a revoked peer running on another goroutine may still run, or
// be about to start, when it returns.
func (e *Endpoint) SetTrustFromCallback(caPEM []byte, pins []PeerID) ([]PeerID, error) {
	return e.setTrust(caPEM, pins, false)
}

func (e *Endpoint) setTrust(caPEM []byte, pins []PeerID, waitCalls bool) ([]PeerID, error) {
	set, err := loadTrust(caPEM, pins)
	if err != nil {
		return nil, err
	}
	var r revocation
	revoked, err := e.replaceTrust(set, &r)
	if err != nil {
		return nil, err
	}
	e.finishRevocation(&r, waitCalls)
	e.infof("trust set replaced: %d peer(s) revoked", len(revoked))
	return revoked, nil
}

// replaceTrust stores set and cuts off what it no longer trusts, under
// the trust lock; r collects what finishRevocation does after it.
func (e *Endpoint) replaceTrust(set *trustSet, r *revocation) ([]PeerID, error) {
	e.trustChange.Lock()
	defer e.trustChange.Unlock()
	if e.closing.Load() {
		return nil, ErrClosed
	}
	// Stored and listed under trustMu, which admitConn holds while it
	// re-checks a new connection and tracks it: a connection is either
	// listed here or checked against the new set there.
	e.trustMu.Lock()
	e.id.trust.Store(set)
	e.trustChanged = true
	conns, _ := e.conns.snapshot()
	e.trustMu.Unlock()

	now := time.Now()
	check := func(certs []*x509.Certificate) error { return set.verify(certs, now) }
	revoked := e.known.failing(check)
	for _, c := range conns {
		if c.revoked.Load() {
			continue // cut off by an earlier call, and on its way out
		}
		err := check(c.peerCerts)
		if err == nil {
			continue
		}
		e.revokeConn(c, err, r)
		if !slices.Contains(revoked, c.peerID) {
			revoked = append(revoked, c.peerID)
		}
	}
	// Messages of a revoked peer may wait in the queue after its
	// connections are gone: they go too.
	e.purgeRevoked(r, func(g *readGate) bool { return slices.Contains(revoked, g.peer) })
	return revoked, nil
}

// revocation is what one trust change cut off. The log lines and the
// waits for OnMessage calls happen after the trust lock is released: a
// log callback or a receive callback may itself call the trust calls.
type revocation struct {
	gates []*readGate
	notes []string
}

func (r *revocation) note(format string, args ...any) {
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

// finishRevocation logs what r cut off and, if asked, waits for the
// OnMessage calls of its closed gates that were in progress.
func (e *Endpoint) finishRevocation(r *revocation, waitCalls bool) {
	for _, n := range r.notes {
		e.warnf("%s", n)
	}
	if waitCalls {
		for _, g := range r.gates {
			g.waitCalls()
		}
	}
}

// revokeConn cuts a connection whose peer is no longer trusted off: its
// readers stop delivering, its sends fail, and it is closed.
func (e *Endpoint) revokeConn(c *peerConn, why error, r *revocation) {
	r.gates = append(r.gates, c.closeGates(true, func(*readGate) bool { return true })...)
	e.conns.remove(c)
	e.stats.connectionsRevoked.Add(1)
	r.note("closing the connection to %s (peer id %s): its certificate is no longer trusted: %v", c.addr, logPeerID(c.peerID), why)
	_ = c.qc.CloseWithError(quic.ApplicationErrorCode(wire.ConnCodeNotAuthorized), "certificate no longer trusted")
	// Now rather than when the connection's watcher gets to it: a send
	// that starts after the revocation returned must not find a stream
	// still taking messages.
	c.failStreams()
}

// purgeRevoked drops the queued messages of closed gates and of the gates
// drop selects.
func (e *Endpoint) purgeRevoked(r *revocation, drop func(*readGate) bool) {
	n := e.queue.purge(func(m *message) bool { g := m.src.gate; return g != nil && (!g.open() || drop(g)) })
	if n > 0 {
		e.stats.messagesRevoked.Add(uint64(n))
		r.note("dropped %d received message(s) of revoked peers or teams that the application had not taken", n)
	}
}

// admitConn tracks a new connection unless a SetTrust since its handshake
// no longer trusts its peer; false when it was not tracked (the caller
// closes it). err says why.
func (e *Endpoint) admitConn(c *peerConn) (bool, error) {
	e.trustMu.Lock()
	defer e.trustMu.Unlock()
	if e.trustChanged {
		if err := e.id.trust.Load().verify(c.peerCerts, time.Now()); err != nil {
			return false, fmt.Errorf("%w: %w", ErrTLS, err)
		}
	}
	if !e.conns.track(c) {
		return false, ErrClosed
	}
	e.known.add(c.peerID, c.peerCerts)
	return true, nil
}

// SetIdentity replaces this endpoint's certificate chain and key for new
// handshakes, dialed or accepted; existing connections keep theirs. The
// stateless reset key stays the one chosen at start. An input that does
// not parse, a key that does not match or a certificate outside its
// validity changes nothing (ErrInvalidConfig).
func (e *Endpoint) SetIdentity(certPEM, keyPEM []byte) error {
	cert, err := loadCertificate(certPEM, keyPEM, time.Now())
	if err != nil {
		return err
	}
	if e.closing.Load() {
		return ErrClosed
	}
	e.id.cert.Store(cert)
	e.infof("identity replaced: new handshakes present peer id %s", logPeerID(sha256.Sum256(cert.Certificate[0])))
	return nil
}

// LocalPeerID is the peer id peers see in new handshakes: the SHA-256 of
// the current leaf certificate.
func (e *Endpoint) LocalPeerID() PeerID { return e.peerFingerprint() }

// AllowTeam allows peer on team, when Config.TeamAuthorization is on.
func (e *Endpoint) AllowTeam(peer PeerID, team TeamID) error {
	if err := e.checkAuthArgs(peer, team); err != nil {
		return err
	}
	// Only the list's own lock: allowing never waits for a revocation in
	// progress (one racing this call may reset a stream it then allows).
	e.auth.allow(peer, team)
	return nil
}

// RevokeTeam stops allowing peer on team. It applies to streams already
// open: when it returns the peer's streams on the team (and its sync
// streams, if that was its last team) are reset with stream code
// NOT_AUTHORIZED, nothing more of them is queued, what they queued that
// the application had not taken is dropped (Stats.MessagesRevoked), and
// no OnMessage call for them starts. lastTeam says it was the peer's last
// team, so its sync streams went too (an application holding messages it
// took drops the peer's sync messages then). It waits for OnMessage calls
// in progress of what it revoked: from inside OnMessage use
// RevokeTeamFromCallback.
func (e *Endpoint) RevokeTeam(peer PeerID, team TeamID) (lastTeam bool, err error) {
	return e.revokeTeam(peer, team, true)
}

// RevokeTeamFromCallback is RevokeTeam for use inside OnMessage; see
// SetTrustFromCallback.
func (e *Endpoint) RevokeTeamFromCallback(peer PeerID, team TeamID) (lastTeam bool, err error) {
	return e.revokeTeam(peer, team, false)
}

func (e *Endpoint) revokeTeam(peer PeerID, team TeamID, waitCalls bool) (bool, error) {
	if err := e.checkAuthArgs(peer, team); err != nil {
		return false, err
	}
	var r revocation
	lastTeam := e.revokeTeamLocked(peer, team, &r)
	e.finishRevocation(&r, waitCalls)
	return lastTeam, nil
}

func (e *Endpoint) revokeTeamLocked(peer PeerID, team TeamID, r *revocation) bool {
	e.trustChange.Lock()
	defer e.trustChange.Unlock()
	changed, lastTeam := e.auth.revoke(peer, team)
	if !changed {
		return false
	}
	// After the list changed: a reader registers its gate before it
	// checks the list, so it is either closed here or refused there.
	revokedStream := func(g *readGate) bool {
		return g.peer == peer && ((g.kind == KindChannel && g.team == team) || (lastTeam && g.kind == KindSync))
	}
	conns, _ := e.conns.snapshot()
	before := len(r.gates)
	for _, c := range conns {
		if c.peerID == peer {
			r.gates = append(r.gates, c.closeGates(false, revokedStream)...)
		}
	}
	if n := len(r.gates) - before; n > 0 {
		r.note("peer id %s no longer allowed on team %x: %d open stream(s) reset", logPeerID(peer), team[:4], n)
	}
	e.purgeRevoked(r, revokedStream)
	return lastTeam
}

func (e *Endpoint) checkAuthArgs(peer PeerID, team TeamID) error {
	switch {
	case !e.auth.enabled:
		return fmt.Errorf("%w: team authorization is off in this endpoint's config", ErrInvalidConfig)
	case peer == PeerID{}:
		return fmt.Errorf("%w: peer id is all zeroes", ErrInvalidConfig)
	case team == TeamID{}:
		return fmt.Errorf("%w: team id is all zeroes", ErrInvalidConfig)
	case e.closing.Load():
		return ErrClosed
	}
	return nil
}

// PeerIDFromPEM returns the peer id of the first certificate in certPEM:
// the SHA-256 of its DER, as peers report it and pins list it.
func PeerIDFromPEM(certPEM []byte) (PeerID, error) {
	for rest := certPEM; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return PeerID{}, fmt.Errorf("%w: no certificate found in the PEM", ErrInvalidConfig)
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return PeerID{}, fmt.Errorf("%w: certificate: %w", ErrInvalidConfig, err)
		}
		return sha256.Sum256(b.Bytes), nil
	}
}
