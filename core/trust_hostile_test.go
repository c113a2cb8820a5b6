package core

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aranya-quic/aranya-quic/core/certgen"
)

// Hostile tests of trust that changes at runtime: SetTrust, SetIdentity,
// the team authorization list and the connection list. Every bound below
// guards against a hang; none checks how long something took.

// hangBound is how long a call that must return is given before the test
// calls it a deadlock.
const hangBound = 15 * time.Second

// returns runs f and reports whether it returned within hangBound.
func returns(f func()) bool {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
		return true
	case <-time.After(hangBound):
		return false
	}
}

// unclosedEndpoint is an endpoint whose cleanup closes it only when the
// test did not find it deadlocked (a Close would then hang the test
// binary too).
func unclosedEndpoint(t *testing.T, cfg Config) (*Endpoint, *atomic.Bool) {
	t.Helper()
	e, err := NewEndpoint(cfg)
	require.NoError(t, err)
	var stuck atomic.Bool
	t.Cleanup(func() {
		if stuck.Load() {
			e.Shutdown()
			return
		}
		e.Close()
	})
	return e, &stuck
}

// seqMsg is message i of a numbered sequence.
func seqMsg(i int) []byte { return binary.BigEndian.AppendUint32(nil, uint32(i)) }

func seqOf(t testing.TB, m []byte) int {
	t.Helper()
	require.Len(t, m, 4)
	return int(binary.BigEndian.Uint32(m))
}

// queuedNow takes what e has queued now, without waiting for more.
func queuedNow(t testing.TB, e *Endpoint) []received {
	t.Helper()
	var out []received
	buf := make([]byte, 4<<20)
	for {
		ch, n, err := e.Receive(buf)
		if errors.Is(err, ErrWouldBlock) {
			return out
		}
		require.NoError(t, err)
		out = append(out, received{ch, append([]byte(nil), buf[:n]...)})
	}
}

// A stream that ended (its reader read the sender's FIN) no longer has a
// gate, but its messages can still wait in the receive queue. A peer the
// trust set no longer trusts must not have them delivered after SetTrust
// returned: the documented promise is about the peer's queued messages,
// not only those of its streams still open.
func TestHostileTrustSetTrustDropsQueuedMessagesOfEndedStreams(t *testing.T) {
	aliceCfg, bobCfg, carolCfg := peerConfig(t, "alice"), peerConfig(t, "bob"), peerConfig(t, "carol")
	// One stream at a time: bob's second channel retires his first
	// channel's stream, whose reader then reads its FIN and ends.
	aliceCfg.MaxChannelsPerPeer = 1
	alice, bob := newEndpoint(t, aliceCfg), newEndpoint(t, bobCfg)
	bobID := idOf(t, bobCfg)
	require.NoError(t, bob.Send(sendCtx(t), alice.LocalAddr(), team(1), "first", []byte("of an ended stream")))
	require.NoError(t, bob.Send(sendCtx(t), alice.LocalAddr(), team(1), "second", []byte("of an open stream")))
	waitFor(t, "both of bob's messages queued at alice", func() bool { return alice.Stats().QueueMessages == 2 },
		func() string { return fmt.Sprintf("%+v", alice.Stats()) })

	ids, err := alice.SetTrust(aliceCfg.CAPEM, []PeerID{idOf(t, carolCfg)})
	require.NoError(t, err)
	require.Equal(t, []PeerID{bobID}, ids)
	for _, r := range queuedNow(t, alice) {
		require.NotEqual(t, bobID, r.ch.PeerID, "bob's message %q (label %q) was delivered after SetTrust stopped trusting him", r.msg, r.ch.Label)
	}
	require.Equal(t, uint64(2), alice.Stats().MessagesRevoked)
}

// The same after bob closed his connection gracefully: everything he sent
// was confirmed and waits in alice's queue, and SetTrust finds no
// connection of his to close.
func TestHostileTrustSetTrustDropsQueuedMessagesOfClosedConnections(t *testing.T) {
	aliceCfg, bobCfg, carolCfg := peerConfig(t, "alice"), peerConfig(t, "bob"), peerConfig(t, "carol")
	alice, bob := newEndpoint(t, aliceCfg), newEndpoint(t, bobCfg)
	bobID := idOf(t, bobCfg)
	for i := range 5 {
		require.NoError(t, bob.Send(sendCtx(t), alice.LocalAddr(), team(1), "x", seqMsg(i)))
	}
	require.NoError(t, bob.CloseConnection(alice.LocalAddr()))
	waitFor(t, "bob's connection gone at alice", func() bool { return len(alice.Connections()) == 0 },
		func() string { return fmt.Sprintf("%+v", alice.Connections()) })
	require.Equal(t, uint64(5), alice.Stats().QueueMessages)

	_, err := alice.SetTrust(aliceCfg.CAPEM, []PeerID{idOf(t, carolCfg)})
	require.NoError(t, err)
	got := queuedNow(t, alice)
	require.Empty(t, got, "%d message(s) of bob delivered after SetTrust stopped trusting him (peer %x)", len(got), bobID[:4])
}

// RevokeTeam's promise for the messages a peer queued on the team holds
// for streams that already ended as well.
func TestHostileTrustRevokeTeamDropsQueuedMessagesOfEndedStreams(t *testing.T) {
	aliceCfg, bobCfg := authConfig(t, "alice"), peerConfig(t, "bob")
	aliceCfg.MaxChannelsPerPeer = 1
	alice, bob := newEndpoint(t, aliceCfg), newEndpoint(t, bobCfg)
	bobID := idOf(t, bobCfg)
	require.NoError(t, alice.AllowTeam(bobID, team(1)))
	require.NoError(t, bob.Send(sendCtx(t), alice.LocalAddr(), team(1), "first", []byte("of an ended stream")))
	require.NoError(t, bob.Send(sendCtx(t), alice.LocalAddr(), team(1), "second", []byte("of an open stream")))
	waitFor(t, "both of bob's messages queued at alice", func() bool { return alice.Stats().QueueMessages == 2 },
		func() string { return fmt.Sprintf("%+v", alice.Stats()) })

	require.NoError(t, errOf(alice.RevokeTeam(bobID, team(1))))
	for _, r := range queuedNow(t, alice) {
		require.NotEqual(t, team(1), r.ch.TeamID, "bob's message %q (label %q) on the revoked team was delivered after RevokeTeam returned", r.msg, r.ch.Label)
	}
	require.Equal(t, uint64(2), alice.Stats().MessagesRevoked)
}

// A connection closed by one SetTrust stays listed until its watcher gets
// to it; a second SetTrust must not revoke (count and name) it again.
func TestHostileTrustRepeatedSetTrustCountsEachConnectionOnce(t *testing.T) {
	aliceCfg, bobCfg := peerConfig(t, "alice"), peerConfig(t, "bob")
	alice, bob := newEndpoint(t, aliceCfg), newEndpoint(t, bobCfg)
	other, err := certgen.NewCA("another CA")
	require.NoError(t, err)
	const rounds = 5
	total := 0
	for r := range rounds {
		if r > 0 {
			_, err := alice.SetTrust(aliceCfg.CAPEM, nil)
			require.NoError(t, err)
		}
		// Bob's sends before the close reached him would be lost (as
		// documented): let it reach him first.
		waitFor(t, "bob seeing the close", func() bool { return len(bob.Connections()) == 0 }, func() string { return "" })
		require.NoError(t, bob.Send(sendCtx(t), alice.LocalAddr(), team(1), "x", seqMsg(r)))
		recvN(t, alice, 1, 10*time.Second)
		for range 3 {
			ids, err := alice.SetTrust(other.CertPEM, nil)
			require.NoError(t, err)
			total += len(ids)
		}
	}
	require.Equal(t, rounds, total, "SetTrust named bob again for a connection it had already closed")
	require.Equal(t, uint64(rounds), alice.Stats().ConnectionsRevoked)
}

// Once SetTrust returned, the connection it closed is no longer listed.
func TestHostileTrustConnectionsForgetRevokedAtOnce(t *testing.T) {
	aliceCfg, bobCfg := peerConfig(t, "alice"), peerConfig(t, "bob")
	alice, bob := newEndpoint(t, aliceCfg), newEndpoint(t, bobCfg)
	bobID := idOf(t, bobCfg)
	other, err := certgen.NewCA("another CA")
	require.NoError(t, err)
	for r := range 5 {
		_, err := alice.SetTrust(aliceCfg.CAPEM, nil)
		require.NoError(t, err)
		waitFor(t, "bob seeing the close", func() bool { return len(bob.Connections()) == 0 }, func() string { return "" })
		require.NoError(t, bob.Send(sendCtx(t), alice.LocalAddr(), team(1), "x", seqMsg(r)))
		recvN(t, alice, 1, 10*time.Second)
		ids, err := alice.SetTrust(other.CertPEM, nil)
		require.NoError(t, err)
		require.Equal(t, []PeerID{bobID}, ids)
		for _, c := range alice.Connections() {
			require.NotEqual(t, bobID, c.PeerID, "round %d: the revoked connection is still listed: %+v", r, c)
		}
	}
}

// RevokeTeam holds the trust lock while it waits for bob's callback in
// progress. A callback that itself calls AllowTeam (documented to block
// only for a short lock; an application granting a team on a message it
// received is the obvious use) then waits for RevokeTeam, which waits for
// it.
func TestHostileTrustAllowTeamInsideCallbackWhileRevokeTeamWaits(t *testing.T) {
	aliceCfg, bobCfg, carolCfg := authConfig(t, "alice"), peerConfig(t, "bob"), peerConfig(t, "carol")
	bobID, carolID := idOf(t, bobCfg), idOf(t, carolCfg)
	entered, release := make(chan struct{}), make(chan struct{})
	allowed := make(chan error, 1)
	var alice *Endpoint
	var once sync.Once
	aliceCfg.OnMessage = func(ch *Channel, _ []byte) {
		once.Do(func() {
			close(entered)
			<-release
			allowed <- alice.AllowTeam(carolID, team(5))
		})
	}
	alice, stuck := unclosedEndpoint(t, aliceCfg)
	bob := newEndpoint(t, bobCfg)
	require.NoError(t, alice.AllowTeam(bobID, team(1)))
	require.NoError(t, bob.Send(sendCtx(t), alice.LocalAddr(), team(1), "x", []byte("grant carol")))
	<-entered

	revoked := make(chan error, 1)
	go func() { revoked <- errOf(alice.RevokeTeam(bobID, team(1))) }()
	// Let RevokeTeam reach its wait for the callback (an ordering aid,
	// not a check of time).
	time.Sleep(200 * time.Millisecond)
	close(release)
	var errAllow, errRevoke error
	if !returns(func() { errAllow, errRevoke = <-allowed, <-revoked }) {
		stuck.Store(true)
		t.Fatal("deadlock: RevokeTeam waits for bob's callback while holding the trust lock, and the callback's AllowTeam waits for that lock")
	}
	require.NoError(t, errAllow)
	require.NoError(t, errRevoke)
}

// The same with the callback variant the documentation prescribes inside
// a callback: RevokeTeamFromCallback does not wait for callbacks, but it
// still takes the lock that a RevokeTeam waiting for this callback holds.
func TestHostileTrustRevokeFromCallbackWhileAnotherRevokeWaitsForIt(t *testing.T) {
	aliceCfg, bobCfg, carolCfg := authConfig(t, "alice"), peerConfig(t, "bob"), peerConfig(t, "carol")
	bobID, carolID := idOf(t, bobCfg), idOf(t, carolCfg)
	entered, release := make(chan struct{}), make(chan struct{})
	inner := make(chan error, 1)
	var alice *Endpoint
	var once sync.Once
	aliceCfg.OnMessage = func(ch *Channel, _ []byte) {
		if ch.PeerID != bobID {
			return
		}
		once.Do(func() {
			close(entered)
			<-release
			inner <- errOf(alice.RevokeTeamFromCallback(carolID, team(7)))
		})
	}
	alice, stuck := unclosedEndpoint(t, aliceCfg)
	bob := newEndpoint(t, bobCfg)
	require.NoError(t, alice.AllowTeam(bobID, team(1)))
	require.NoError(t, alice.AllowTeam(carolID, team(7)))
	require.NoError(t, bob.Send(sendCtx(t), alice.LocalAddr(), team(1), "x", []byte("revoke carol")))
	<-entered

	outer := make(chan error, 1)
	go func() { outer <- errOf(alice.RevokeTeam(bobID, team(1))) }()
	time.Sleep(200 * time.Millisecond) // ordering aid only
	close(release)
	var errInner, errOuter error
	if !returns(func() { errInner, errOuter = <-inner, <-outer }) {
		stuck.Store(true)
		t.Fatal("deadlock: RevokeTeamFromCallback inside bob's callback waits for the trust lock held by a RevokeTeam waiting for that callback")
	}
	require.NoError(t, errInner)
	require.NoError(t, errOuter)
}

// callingHandler is a log handler that calls back into the endpoint on
// the records that contain match, as the C API allows its log callback to.
type callingHandler struct {
	match string
	call  func()
	calls atomic.Int64
}

func (h *callingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *callingHandler) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, h.match) {
		h.calls.Add(1)
		h.call()
	}
	return nil
}
func (h *callingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *callingHandler) WithGroup(string) slog.Handler      { return h }

// SetTrust logs while it holds the trust lock. The C API's log callback
// "may call the library"; one that calls team_allow on a revocation's
// WARN record deadlocks on that lock, on the very goroutine that holds it.
func TestHostileTrustLoggerThatCallsAllowTeamDuringSetTrust(t *testing.T) {
	aliceCfg, bobCfg, carolCfg := authConfig(t, "alice"), peerConfig(t, "bob"), peerConfig(t, "carol")
	bobID, carolID := idOf(t, bobCfg), idOf(t, carolCfg)
	var alice *Endpoint
	h := &callingHandler{match: "no longer trusted", call: func() {
		_ = alice.AllowTeam(carolID, team(3))
	}}
	aliceCfg.Logger = slog.New(h)
	alice, stuck := unclosedEndpoint(t, aliceCfg)
	bob := newEndpoint(t, bobCfg)
	require.NoError(t, alice.AllowTeam(bobID, team(1)))
	require.NoError(t, bob.Send(sendCtx(t), alice.LocalAddr(), team(1), "x", []byte("1")))
	recvN(t, alice, 1, 10*time.Second)

	var ids []PeerID
	var err error
	if !returns(func() { ids, err = alice.SetTrust(aliceCfg.CAPEM, []PeerID{carolID}) }) {
		stuck.Store(true)
		t.Fatal("deadlock: a log record emitted under the trust lock called AllowTeam, which takes that lock")
	}
	require.NoError(t, err)
	require.Equal(t, []PeerID{bobID}, ids)
	require.Positive(t, h.calls.Load())
}

// Bob's readers are blocked waiting for room in alice's full queue when
// SetTrust revokes him: the call does not hang, nothing of bob is
// delivered afterwards, and carol's messages, queued among his, all
// arrive, in order.
func TestHostileTrustRevokeWhileQueueIsFull(t *testing.T) {
	aliceCfg, bobCfg, carolCfg := peerConfig(t, "alice"), peerConfig(t, "bob"), peerConfig(t, "carol")
	aliceCfg.MaxQueueMessages = 4
	alice, bob, carol := newEndpoint(t, aliceCfg), newEndpoint(t, bobCfg), newEndpoint(t, carolCfg)
	bobID, carolID := idOf(t, bobCfg), idOf(t, carolCfg)

	var streams []*streamer
	for i := range 3 {
		streams = append(streams, startStreaming(bob, alice.LocalAddr(), team(byte(i+1))))
	}
	const n = 200
	carolDone := make(chan error, 1)
	go func() {
		for i := range n {
			if err := carol.Send(sendCtx(t), alice.LocalAddr(), team(9), "seq", seqMsg(i)); err != nil {
				carolDone <- fmt.Errorf("message %d: %w", i, err)
				return
			}
		}
		carolDone <- nil
	}()
	waitFor(t, "alice's queue full", func() bool { return alice.Stats().QueueMessages == 4 },
		func() string { return fmt.Sprintf("%+v", alice.Stats()) })
	// Carol alone may have filled the queue while bob's handshake was still
	// going: a peer that never got in is not one SetTrust revokes.
	waitFor(t, "bob connected", func() bool {
		for _, c := range alice.Connections() {
			if c.PeerID == bobID {
				return true
			}
		}
		return false
	}, func() string { return fmt.Sprintf("%+v", alice.Connections()) })

	var ids []PeerID
	var err error
	if !returns(func() { ids, err = alice.SetTrust(aliceCfg.CAPEM, []PeerID{carolID}) }) {
		t.Fatal("SetTrust hung while bob's readers waited for room in the queue")
	}
	require.NoError(t, err)
	require.Equal(t, []PeerID{bobID}, ids)

	got := recvN(t, alice, n, 20*time.Second)
	for i, r := range got {
		require.Equal(t, carolID, r.ch.PeerID, "message %d after the revocation is not carol's", i)
		require.Equal(t, i, seqOf(t, r.msg), "carol's messages out of order")
	}
	require.NoError(t, <-carolDone)
	require.Zero(t, drainFrom(t, alice, bobID, 300*time.Millisecond))
	for _, s := range streams {
		require.ErrorIs(t, s.failure(t), ErrTLS)
	}
	require.Zero(t, carol.Stats().MessagesUnconfirmed)
}

// Receivers blocked in ReceiveContext and ReceiveBatchContext while a
// revocation purges: a receive call that starts after SetTrust returned
// never returns a message of bob, and no message of carol is lost.
func TestHostileTrustRevokeWithBlockedReceivers(t *testing.T) {
	aliceCfg, bobCfg, carolCfg := peerConfig(t, "alice"), peerConfig(t, "bob"), peerConfig(t, "carol")
	alice, bob, carol := newEndpoint(t, aliceCfg), newEndpoint(t, bobCfg), newEndpoint(t, carolCfg)
	bobID, carolID := idOf(t, bobCfg), idOf(t, carolCfg)

	var revoked atomic.Bool
	var late, fromCarol atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	count := func(ch *Channel, after bool) {
		switch {
		case ch.PeerID == carolID:
			fromCarol.Add(1)
		case ch.PeerID == bobID && after:
			late.Add(1)
		}
	}
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 1<<16)
			for {
				select {
				case <-stop:
					return
				default:
				}
				after := revoked.Load() // read before the call starts
				ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
				if i%2 == 0 {
					ch, _, err := alice.ReceiveContext(ctx, buf)
					if err == nil {
						count(&ch, after)
					}
				} else {
					_, _, _ = alice.ReceiveBatchContext(ctx, buf, 8, func(ch *Channel, _, _ int) { count(ch, after) })
				}
				cancel()
			}
		}()
	}
	bs := startStreaming(bob, alice.LocalAddr(), team(1))
	cs := startStreaming(carol, alice.LocalAddr(), team(2))
	waitFor(t, "carol's messages flowing", func() bool { return fromCarol.Load() > 50 }, func() string { return "" })

	_, err := alice.SetTrust(aliceCfg.CAPEM, []PeerID{carolID})
	require.NoError(t, err)
	revoked.Store(true)
	require.ErrorIs(t, bs.failure(t), ErrTLS)
	require.NoError(t, cs.halt())
	waitFor(t, "every message of carol received", func() bool { return fromCarol.Load() == cs.sent.Load() },
		func() string { return fmt.Sprintf("received %d of %d", fromCarol.Load(), cs.sent.Load()) })
	close(stop)
	wg.Wait()
	require.Zero(t, late.Load(), "a receive started after SetTrust returned got bob's message")
}

// Non-blocking sends queued toward a peer when SetTrust stops trusting it:
// each gets SEND_FAILED with ErrTLS unless it was handed to a stream, and
// the outbound gauges return to zero.
func TestHostileTrustQueuedTrySendsToRevokedPeer(t *testing.T) {
	aliceCfg, bobCfg, carolCfg := peerConfig(t, "alice"), peerConfig(t, "bob"), peerConfig(t, "carol")
	// Bob's application never reads: his queue holds one message, so flow
	// control stops alice's stream and her sends pile up in her queue.
	bobCfg.MaxQueueMessages = 1
	alice, bob := newEndpoint(t, aliceCfg), newEndpoint(t, bobCfg)
	bobID := idOf(t, bobCfg)
	msg := make([]byte, 64<<10)
	var ids []uint64
	for range 200 {
		id, err := alice.TrySend(PeerAt(bob.LocalAddr()), team(1), "x", msg)
		if errors.Is(err, ErrWouldBlock) {
			break
		}
		require.NoError(t, err)
		ids = append(ids, id)
	}
	waitFor(t, "alice's stream to bob blocked", func() bool {
		return bob.Stats().QueueMessages == 1 && alice.Stats().OutboundMessages > 0
	}, func() string { return fmt.Sprintf("alice %+v bob %+v", alice.Stats(), bob.Stats()) })

	revokedIDs, err := alice.SetTrust(aliceCfg.CAPEM, []PeerID{idOf(t, carolCfg)})
	require.NoError(t, err)
	require.Equal(t, []PeerID{bobID}, revokedIDs)

	failed := map[uint64]error{}
	waitFor(t, "every queued message accounted for", func() bool {
		for _, ev := range drainEvents(alice) {
			if ev.Type == EventSendFailed {
				_, dup := failed[ev.ID]
				require.False(t, dup, "two SEND_FAILED events for message %d", ev.ID)
				failed[ev.ID] = ev.Err
			}
		}
		return uint64(len(failed))+alice.Stats().MessagesSent == uint64(len(ids))
	}, func() string {
		return fmt.Sprintf("%d failed + %d sent of %d", len(failed), alice.Stats().MessagesSent, len(ids))
	})
	require.NotEmpty(t, failed)
	for id, err := range failed {
		require.ErrorIs(t, err, ErrTLS, "message %d", id)
	}
	st := alice.Stats()
	require.Zero(t, st.OutboundMessages)
	require.Zero(t, st.OutboundBytes)
	require.Equal(t, uint64(len(failed)), st.SendsFailed)
}

// Bob keeps dialing while SetTrust flips between trusting him and not. A
// peer the final set does not trust never has a message delivered after
// that call returned.
func TestHostileTrustFlappingDuringHandshakes(t *testing.T) {
	aliceCfg, bobCfg, carolCfg := peerConfig(t, "alice"), peerConfig(t, "bob"), peerConfig(t, "carol")
	aliceCfg.HandshakeTimeout = 2 * time.Second
	alice, bob := newEndpoint(t, aliceCfg), newEndpoint(t, bobCfg)
	bobID, carolID := idOf(t, bobCfg), idOf(t, carolCfg)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				err := bob.Send(ctx, alice.LocalAddr(), team(byte(i+1)), "flap", []byte("b"))
				cancel()
				if err != nil && !errors.Is(err, ErrTLS) && !errors.Is(err, ErrConnection) && !errors.Is(err, ErrTimeout) {
					t.Errorf("bob's send: unexpected error %v", err)
					return
				}
			}
		}()
	}
	for i := range 60 {
		pins := []PeerID{carolID}
		if i%2 == 0 {
			pins = append(pins, bobID)
		}
		_, err := alice.SetTrust(aliceCfg.CAPEM, pins)
		require.NoError(t, err)
		time.Sleep(time.Duration(i%7) * time.Millisecond)
	}
	_, err := alice.SetTrust(aliceCfg.CAPEM, []PeerID{carolID})
	require.NoError(t, err)
	for _, r := range queuedNow(t, alice) {
		require.NotEqual(t, bobID, r.ch.PeerID, "bob's message delivered after the final SetTrust")
	}
	require.Zero(t, drainFrom(t, alice, bobID, 300*time.Millisecond))
	close(stop)
	wg.Wait()
	require.Zero(t, drainFrom(t, alice, bobID, 100*time.Millisecond))
	for _, c := range alice.Connections() {
		if c.PeerID == bobID {
			require.True(t, c.Draining, "a connection of bob is up after the final SetTrust: %+v", c)
		}
	}
}

// Authorization is per receive direction: with it on at alice only, bob
// needs alice's permission and alice needs none; with it on at both, each
// needs the other's, on the same connection.
func TestHostileTrustTeamAuthorizationMismatchedPeers(t *testing.T) {
	t.Run("alice on, bob off", func(t *testing.T) {
		aliceCfg, bobCfg := authConfig(t, "alice"), peerConfig(t, "bob")
		alice, bob := newEndpoint(t, aliceCfg), newEndpoint(t, bobCfg)
		aliceID, bobID := idOf(t, aliceCfg), idOf(t, bobCfg)
		require.NoError(t, alice.Send(sendCtx(t), bob.LocalAddr(), team(4), "a", []byte("no permission needed")))
		require.NoError(t, alice.SendSync(sendCtx(t), bob.LocalAddr(), 1, []byte("sync too")))
		require.Len(t, recvN(t, bob, 2, 10*time.Second), 2)
		require.ErrorIs(t, bob.Send(sendCtx(t), alice.LocalAddr(), team(4), "b", []byte("refused")), ErrNotAuthorized)
		require.ErrorIs(t, bob.AllowTeam(aliceID, team(4)), ErrInvalidConfig)
		require.NoError(t, alice.AllowTeam(bobID, team(4)))
		require.NoError(t, bob.Send(sendCtx(t), alice.LocalAddr(), team(4), "b", []byte("allowed")))
		require.Equal(t, "allowed", string(recvN(t, alice, 1, 10*time.Second)[0].msg))
		require.Zero(t, bob.Stats().StreamsRefused)
		require.Equal(t, uint64(1), alice.Stats().StreamsRefused)
	})
	t.Run("both on", func(t *testing.T) {
		aliceCfg, bobCfg := authConfig(t, "alice"), authConfig(t, "bob")
		alice, bob := newEndpoint(t, aliceCfg), newEndpoint(t, bobCfg)
		aliceID, bobID := idOf(t, aliceCfg), idOf(t, bobCfg)
		require.NoError(t, alice.AllowTeam(bobID, team(1)))
		require.NoError(t, bob.Send(sendCtx(t), alice.LocalAddr(), team(1), "b", []byte("to alice")))
		recvN(t, alice, 1, 10*time.Second)
		// The same connection, the other way: bob allows nobody.
		require.ErrorIs(t, alice.Send(sendCtx(t), bob.LocalAddr(), team(1), "a", []byte("to bob")), ErrNotAuthorized)
		require.ErrorIs(t, alice.SendSync(sendCtx(t), bob.LocalAddr(), 2, []byte("sync")), ErrNotAuthorized)
		require.NoError(t, bob.AllowTeam(aliceID, team(1)))
		require.NoError(t, alice.Send(sendCtx(t), bob.LocalAddr(), team(1), "a", []byte("to bob")))
		require.NoError(t, alice.SendSync(sendCtx(t), bob.LocalAddr(), 2, []byte("sync")))
		got := recvN(t, bob, 2, 10*time.Second)
		require.Equal(t, "to bob", string(got[0].msg))
		require.Equal(t, KindSync, got[1].ch.Kind)
		require.Equal(t, uint64(1), alice.Stats().Dials+alice.Stats().Accepts, "one connection carried both directions")
		require.Zero(t, alice.Stats().MessagesUnconfirmed)
	})
}

// More channels than the receiver's stream limit: streams are retired and
// reopened, each reopened stream needs a new verdict, and refusals of
// another team in between do not disturb the allowed channels' order.
func TestHostileTrustVerdictsAcrossRetiredStreams(t *testing.T) {
	aliceCfg, bobCfg := authConfig(t, "alice"), peerConfig(t, "bob")
	aliceCfg.MaxChannelsPerPeer = 2
	alice, bob := newEndpoint(t, aliceCfg), newEndpoint(t, bobCfg)
	bobID := idOf(t, bobCfg)
	require.NoError(t, alice.AllowTeam(bobID, team(1)))
	const channels, rounds = 6, 4
	labels := make([]string, channels)
	for i := range labels {
		labels[i] = fmt.Sprintf("c%02d", i)
	}
	for r := range rounds {
		for _, l := range labels {
			require.NoError(t, bob.Send(sendCtx(t), alice.LocalAddr(), team(1), l, []byte(fmt.Sprintf("%s %d", l, r))))
		}
		err := bob.Send(sendCtx(t), alice.LocalAddr(), team(2), "other", []byte("refused"))
		require.ErrorIs(t, err, ErrNotAuthorized, "round %d", r)
	}
	checkInOrder(t, recvN(t, alice, channels*rounds, 20*time.Second), labels, rounds)
	require.Zero(t, drainFrom(t, alice, bobID, 200*time.Millisecond))
	require.Equal(t, uint64(rounds), alice.Stats().StreamsRefused)
	require.Zero(t, bob.Stats().MessagesUnconfirmed)
	require.Equal(t, uint64(1), bob.Stats().Dials)
}

// A refused stream's first message may be empty or larger than the send
// buffer (the direct-write path): either way the send fails with
// ErrNotAuthorized and nothing counts as accepted; allowed, both arrive
// intact.
func TestHostileTrustFirstMessageSizes(t *testing.T) {
	aliceCfg, bobCfg := authConfig(t, "alice"), peerConfig(t, "bob")
	alice, bob := newEndpoint(t, aliceCfg), newEndpoint(t, bobCfg)
	bobID := idOf(t, bobCfg)
	big := make([]byte, 2<<20)
	for i := range big {
		big[i] = byte(i * 7)
	}
	for i, m := range [][]byte{{}, big} {
		label := fmt.Sprintf("size%d", i)
		require.ErrorIs(t, bob.Send(sendCtx(t), alice.LocalAddr(), team(2), label, m), ErrNotAuthorized, "%d bytes", len(m))
	}
	for i, m := range [][]byte{{}, big} {
		label := fmt.Sprintf("size%d", i)
		id, err := bob.TrySend(PeerAt(alice.LocalAddr()), team(2), label, m)
		require.NoError(t, err)
		ev, _ := waitEvent(t, bob, EventSendFailed)
		require.Equal(t, id, ev.ID)
		require.ErrorIs(t, ev.Err, ErrNotAuthorized, "%d bytes", len(m))
	}
	require.Zero(t, bob.Stats().MessagesSent, "a refused message was counted as sent")
	require.Zero(t, bob.Stats().MessagesUnconfirmed)
	require.NoError(t, alice.AllowTeam(bobID, team(2)))
	for i, m := range [][]byte{{}, big} {
		require.NoError(t, bob.Send(sendCtx(t), alice.LocalAddr(), team(2), fmt.Sprintf("size%d", i), m))
	}
	got := recvN(t, alice, 2, 20*time.Second)
	require.Empty(t, got[0].msg)
	require.Equal(t, big, got[1].msg)
}

// A batch on a channel whose team is revoked midway stops with
// ErrNotAuthorized and says how many it had accepted; none after the
// revocation is delivered.
func TestHostileTrustSendBatchRevokedMidway(t *testing.T) {
	aliceCfg, bobCfg := authConfig(t, "alice"), peerConfig(t, "bob")
	alice, bob := newEndpoint(t, aliceCfg), newEndpoint(t, bobCfg)
	bobID := idOf(t, bobCfg)
	require.NoError(t, alice.AllowTeam(bobID, team(1)))
	const count, revokeAt = 2000, 500
	n, err := bob.SendBatch(sendCtx(t), alice.LocalAddr(), team(1), "batch", count, func(i int) ([]byte, error) {
		if i == revokeAt {
			if err := errOf(alice.RevokeTeam(bobID, team(1))); err != nil {
				return nil, err
			}
			// Let the reset reach bob's stream before his next message.
			s := streamOf(t, bob, alice, "batch")
			deadline := time.Now().Add(hangBound)
			for !s.broken() && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
		}
		return seqMsg(i), nil
	})
	require.ErrorIs(t, err, ErrNotAuthorized)
	require.Equal(t, revokeAt, n, "accepted count")
	// Alice's application took nothing before the revocation, so all of
	// it was dropped.
	require.Empty(t, queuedNow(t, alice))
	st := alice.Stats()
	require.Equal(t, st.MessagesReceived, st.MessagesRevoked)
	require.LessOrEqual(t, st.MessagesReceived, uint64(revokeAt))
}

// RevokeTeam waits for bob's callback in progress (documented) and, once
// it returned, no callback for bob's revoked team starts; his other team
// keeps being delivered.
func TestHostileTrustRevokeTeamWaitsForBlockedCallback(t *testing.T) {
	aliceCfg, bobCfg := authConfig(t, "alice"), peerConfig(t, "bob")
	bobID := idOf(t, bobCfg)
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	var callbackReturned, revoked atomic.Bool
	var late, other atomic.Int64
	aliceCfg.OnMessage = func(ch *Channel, _ []byte) {
		if ch.TeamID == team(2) {
			other.Add(1)
			return
		}
		if revoked.Load() {
			late.Add(1)
		}
		once.Do(func() {
			close(entered)
			<-release
			callbackReturned.Store(true)
		})
	}
	alice, stuck := unclosedEndpoint(t, aliceCfg)
	bob := newEndpoint(t, bobCfg)
	require.NoError(t, alice.AllowTeam(bobID, team(1)))
	require.NoError(t, alice.AllowTeam(bobID, team(2)))
	s1 := startStreaming(bob, alice.LocalAddr(), team(1))
	s2 := startStreaming(bob, alice.LocalAddr(), team(2))
	<-entered

	done := make(chan bool, 1)
	revokeErr := make(chan error, 1)
	go func() {
		err := errOf(alice.RevokeTeam(bobID, team(1)))
		// Read before revoked is set: the callback must have ended first.
		done <- callbackReturned.Load()
		revoked.Store(true)
		revokeErr <- err
	}()
	time.Sleep(100 * time.Millisecond) // ordering aid only
	close(release)
	var waited bool
	if !returns(func() { waited = <-done }) {
		stuck.Store(true)
		t.Fatal("RevokeTeam did not return after the callback did")
	}
	require.NoError(t, <-revokeErr)
	require.True(t, waited, "RevokeTeam returned while bob's callback was still running")
	require.ErrorIs(t, s1.failure(t), ErrNotAuthorized)
	before := other.Load()
	waitFor(t, "team 2 still delivered", func() bool { return other.Load() > before+10 }, func() string { return "" })
	require.NoError(t, s2.halt())
	require.Zero(t, late.Load(), "a callback for the revoked team started after RevokeTeam returned")
}

// RevokeTeamFromCallback and SetTrustFromCallback inside a callback return
// (they do not wait for themselves), also for the callback's own stream.
func TestHostileTrustFromCallbackRevokesItsOwnStream(t *testing.T) {
	aliceCfg, bobCfg, carolCfg := authConfig(t, "alice"), peerConfig(t, "bob"), peerConfig(t, "carol")
	bobID, carolID := idOf(t, bobCfg), idOf(t, carolCfg)
	var alice *Endpoint
	results := make(chan error, 2)
	var calls atomic.Int64
	aliceCfg.OnMessage = func(ch *Channel, _ []byte) {
		switch calls.Add(1) {
		case 1:
			results <- errOf(alice.RevokeTeamFromCallback(bobID, ch.TeamID))
		case 2:
			_, err := alice.SetTrustFromCallback(aliceCfg.CAPEM, []PeerID{carolID})
			results <- err
		}
	}
	alice, stuck := unclosedEndpoint(t, aliceCfg)
	bob := newEndpoint(t, bobCfg)
	require.NoError(t, alice.AllowTeam(bobID, team(1)))
	require.NoError(t, alice.AllowTeam(bobID, team(2)))
	require.NoError(t, bob.Send(sendCtx(t), alice.LocalAddr(), team(1), "x", []byte("revoke my team")))
	var err error
	if !returns(func() { err = <-results }) {
		stuck.Store(true)
		t.Fatal("RevokeTeamFromCallback inside the callback did not return")
	}
	require.NoError(t, err)
	// Bob learns of the reset when it reaches him; sends accepted before
	// that are not delivered (counted below).
	waitFor(t, "bob's team 1 refused", func() bool {
		return errors.Is(bob.Send(sendCtx(t), alice.LocalAddr(), team(1), "x", []byte("refused")), ErrNotAuthorized)
	}, func() string { return "" })
	require.Equal(t, int64(1), calls.Load(), "a message of the revoked team was delivered")
	require.NoError(t, bob.Send(sendCtx(t), alice.LocalAddr(), team(2), "y", []byte("revoke me")))
	if !returns(func() { err = <-results }) {
		stuck.Store(true)
		t.Fatal("SetTrustFromCallback inside the callback did not return")
	}
	require.NoError(t, err)
	waitFor(t, "bob refused", func() bool {
		return errors.Is(bob.Send(sendCtx(t), alice.LocalAddr(), team(2), "y", []byte("refused")), ErrTLS)
	}, func() string { return "" })
	require.Equal(t, int64(2), calls.Load(), "a message of the revoked peer was delivered")
}

// The trust calls racing Close, Shutdown and each other: no panic, no
// deadlock, no data race, and only ErrClosed as an error once closing.
func TestHostileTrustCallsRaceClose(t *testing.T) {
	for round := range 2 {
		aliceCfg, bobCfg, carolCfg := authConfig(t, "alice"), peerConfig(t, "bob"), peerConfig(t, "carol")
		aliceCfg.DrainTimeout = 300 * time.Millisecond
		bobID, carolID := idOf(t, bobCfg), idOf(t, carolCfg)
		aliceCfg.OnMessage = func(*Channel, []byte) { time.Sleep(100 * time.Microsecond) }
		alice, err := NewEndpoint(aliceCfg)
		require.NoError(t, err)
		bob, carol := newEndpoint(t, bobCfg), newEndpoint(t, carolCfg)
		require.NoError(t, alice.AllowTeam(bobID, team(1)))
		require.NoError(t, alice.AllowTeam(carolID, team(1)))
		bs := startStreaming(bob, alice.LocalAddr(), team(1))
		cs := startStreaming(carol, alice.LocalAddr(), team(1))
		waitFor(t, "traffic", func() bool { return alice.Stats().MessagesReceived > 20 }, func() string { return "" })

		check := func(what string, err error) {
			if err != nil && !errors.Is(err, ErrClosed) {
				t.Errorf("round %d: %s: unexpected error %v", round, what, err)
			}
		}
		var wg sync.WaitGroup
		for i := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := 0; ; j++ {
					var err error
					switch (i + j) % 6 {
					case 0:
						_, err = alice.SetTrust(aliceCfg.CAPEM, []PeerID{carolID})
					case 1:
						_, err = alice.SetTrust(aliceCfg.CAPEM, nil)
					case 2:
						err = errOf(alice.RevokeTeam(bobID, team(1)))
					case 3:
						err = alice.AllowTeam(bobID, team(1))
					case 4:
						err = alice.SetIdentity(aliceCfg.CertPEM, aliceCfg.KeyPEM)
					case 5:
						_ = alice.Connections()
						err = alice.CloseConnection(bob.LocalAddr())
						if errors.Is(err, ErrUnconfirmed) {
							err = nil
						}
					}
					check(fmt.Sprint("call ", (i+j)%6), err)
					if errors.Is(err, ErrClosed) {
						return
					}
				}
			}()
		}
		time.Sleep(50 * time.Millisecond)
		closed := make(chan struct{})
		go func() {
			defer close(closed)
			if round%2 == 0 {
				alice.Shutdown()
			}
			_ = alice.Close()
		}()
		if !returns(func() { <-closed; wg.Wait() }) {
			t.Fatalf("round %d: Close or a trust call hung", round)
		}
		_, err = alice.SetTrust(aliceCfg.CAPEM, nil)
		require.ErrorIs(t, err, ErrClosed)
		require.ErrorIs(t, alice.AllowTeam(bobID, team(1)), ErrClosed)
		require.ErrorIs(t, errOf(alice.RevokeTeam(bobID, team(1))), ErrClosed)
		require.ErrorIs(t, alice.SetIdentity(aliceCfg.CertPEM, aliceCfg.KeyPEM), ErrClosed)
		require.Empty(t, alice.Connections())
		// Their sends to the closed alice would wait out their timeout.
		_ = bob.Close()
		_ = carol.Close()
		_ = bs.halt()
		_ = cs.halt()
	}
}

// SetIdentity: an expired certificate is refused and changes nothing; a
// certificate of a CA the peers do not trust is taken, existing
// connections keep working both ways, and new handshakes are refused by
// the peers.
func TestHostileTrustSetIdentityExpiredAndForeign(t *testing.T) {
	aliceCfg, bobCfg := peerConfig(t, "alice"), peerConfig(t, "bob")
	alice, bob := newEndpoint(t, aliceCfg), newEndpoint(t, bobCfg)
	aliceID := idOf(t, aliceCfg)
	expired, err := testPKI().Issue("alice", certgen.PeerOptions{NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
	require.NoError(t, err)
	require.ErrorIs(t, alice.SetIdentity(expired.CertPEM, expired.KeyPEM), ErrInvalidConfig)
	future, err := testPKI().Issue("alice", certgen.PeerOptions{NotBefore: time.Now().Add(time.Hour), NotAfter: time.Now().Add(48 * time.Hour)})
	require.NoError(t, err)
	require.ErrorIs(t, alice.SetIdentity(future.CertPEM, future.KeyPEM), ErrInvalidConfig)
	require.Equal(t, aliceID, alice.LocalPeerID())

	require.NoError(t, alice.Send(sendCtx(t), bob.LocalAddr(), team(1), "x", []byte("before")))
	recvN(t, bob, 1, 10*time.Second)
	other, err := certgen.NewCA("another CA")
	require.NoError(t, err)
	foreign, err := other.Issue("alice", certgen.PeerOptions{})
	require.NoError(t, err)
	require.NoError(t, alice.SetIdentity(foreign.CertPEM, foreign.KeyPEM))

	require.NoError(t, alice.Send(sendCtx(t), bob.LocalAddr(), team(1), "x", []byte("after")))
	require.Equal(t, aliceID, recvN(t, bob, 1, 10*time.Second)[0].ch.PeerID, "the existing connection keeps the old identity")
	require.NoError(t, bob.Send(sendCtx(t), alice.LocalAddr(), team(1), "x", []byte("reply")))
	recvN(t, alice, 1, 10*time.Second)

	dave := newTestEndpoint(t, "dave")
	require.ErrorIs(t, alice.Send(sendCtx(t), dave.LocalAddr(), team(1), "x", []byte("no")), ErrTLS)
	require.ErrorIs(t, dave.Send(sendCtx(t), alice.LocalAddr(), team(1), "x", []byte("no")), ErrTLS)
	require.Zero(t, drainFrom(t, dave, aliceID, 100*time.Millisecond))
}

// Rapid rotations between two valid identities racing dials both ways:
// every handshake completes with one of the two, and every message
// arrives.
func TestHostileTrustRotationsRaceDials(t *testing.T) {
	aliceCfg, altCfg := peerConfig(t, "alice"), peerConfig(t, "alice again")
	alice := newEndpoint(t, aliceCfg)
	ids := map[PeerID]bool{idOf(t, aliceCfg): true, idOf(t, altCfg): true}
	stop := make(chan struct{})
	rotated := make(chan struct{})
	go func() {
		defer close(rotated)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			cfg := aliceCfg
			if i%2 == 1 {
				cfg = altCfg
			}
			if err := alice.SetIdentity(cfg.CertPEM, cfg.KeyPEM); err != nil {
				t.Errorf("SetIdentity: %v", err)
				return
			}
			time.Sleep(200 * time.Microsecond)
		}
	}()
	const peers = 6
	var wg sync.WaitGroup
	for i := range peers {
		p := newTestEndpoint(t, fmt.Sprintf("peer%d", i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				if err := p.Send(sendCtx(t), alice.LocalAddr(), team(1), "in", []byte("to alice")); err != nil {
					t.Errorf("peer %d to alice: %v", i, err)
				}
				return
			}
			if err := alice.Send(sendCtx(t), p.LocalAddr(), team(1), "out", []byte("from alice")); err != nil {
				t.Errorf("alice to peer %d: %v", i, err)
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			ch, _, err := p.ReceiveContext(ctx, make([]byte, 64))
			if err != nil || !ids[ch.PeerID] {
				t.Errorf("peer %d: %v, peer id %x: not one of alice's identities", i, err, ch.PeerID[:4])
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-rotated
	require.Len(t, recvN(t, alice, peers/2, 10*time.Second), peers/2)
	for _, c := range alice.Connections() {
		require.False(t, c.Draining)
	}
}

// Connections while peers connect, close, restart on the same address and
// are revoked: never a panic or race, never a half-filled entry, never the
// same peer listed live twice.
func TestHostileTrustConnectionsDuringChurn(t *testing.T) {
	aliceCfg, carolCfg := peerConfig(t, "alice"), peerConfig(t, "carol")
	alice := newEndpoint(t, aliceCfg)
	carolID := idOf(t, carolCfg)
	stop := make(chan struct{})
	listed := make(chan struct{})
	go func() {
		defer close(listed)
		for {
			select {
			case <-stop:
				return
			default:
			}
			live := map[PeerID]int{}
			for _, c := range alice.Connections() {
				if !c.Addr.IsValid() || c.PeerID == (PeerID{}) || c.ConnectedAt.IsZero() {
					t.Errorf("a half-filled connection listed: %+v", c)
					return
				}
				if !c.Draining {
					live[c.PeerID]++
				}
			}
			for id, n := range live {
				if n > 1 {
					t.Errorf("peer %x listed live %d times", id[:4], n)
					return
				}
			}
		}
	}()
	for round := range 4 {
		bobCfg := peerConfig(t, "bob")
		bob := newEndpoint(t, bobCfg)
		require.NoError(t, bob.Send(sendCtx(t), alice.LocalAddr(), team(1), "x", seqMsg(round)))
		recvN(t, alice, 1, 10*time.Second)
		// Restart bob on the same address, ungracefully.
		addr := bob.LocalAddr()
		bob.udp.Close()
		bob.Close()
		bobCfg.BindAddr = addr.String()
		bob2 := newEndpoint(t, bobCfg)
		require.NoError(t, bob2.Send(sendCtx(t), alice.LocalAddr(), team(1), "x", seqMsg(round)))
		recvN(t, alice, 1, 10*time.Second)
		// Revoke him, re-admit him, then close gracefully.
		_, err := alice.SetTrust(aliceCfg.CAPEM, []PeerID{carolID})
		require.NoError(t, err)
		_, err = alice.SetTrust(aliceCfg.CAPEM, nil)
		require.NoError(t, err)
		_ = alice.CloseConnection(addr)
		bob2.Close()
	}
	close(stop)
	<-listed
	waitFor(t, "every connection gone", func() bool { return len(alice.Connections()) == 0 },
		func() string { return fmt.Sprintf("%+v", alice.Connections()) })
}

// RevokeTeam racing the verdicts of new streams: bob opens a new stream
// (a new label) each time while alice allows and revokes his team. Each
// send succeeds or fails with ErrNotAuthorized (or ErrTimeout), and once
// RevokeTeam returned nothing of the team is delivered.
func TestHostileTrustRevokeTeamRacesVerdicts(t *testing.T) {
	aliceCfg, bobCfg := authConfig(t, "alice"), peerConfig(t, "bob")
	alice, bob := newEndpoint(t, aliceCfg), newEndpoint(t, bobCfg)
	bobID := idOf(t, bobCfg)
	for round := range 30 {
		require.NoError(t, alice.AllowTeam(bobID, team(1)))
		sent := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			sent <- bob.Send(ctx, alice.LocalAddr(), team(1), fmt.Sprintf("new%d", round), seqMsg(round))
		}()
		time.Sleep(time.Duration(round%5) * 200 * time.Microsecond)
		require.NoError(t, errOf(alice.RevokeTeam(bobID, team(1))))
		for _, r := range queuedNow(t, alice) {
			require.NotEqual(t, team(1), r.ch.TeamID, "round %d: message %d delivered after RevokeTeam returned", round, seqOf(t, r.msg))
		}
		if err := <-sent; err != nil && !errors.Is(err, ErrNotAuthorized) && !errors.Is(err, ErrTimeout) {
			t.Fatalf("round %d: unexpected error %v", round, err)
		}
	}
	require.Zero(t, drainFrom(t, alice, bobID, 200*time.Millisecond))
}
