package core

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aranya-quic/aranya-quic/core/certgen"
)

// waitEvent takes events until one of type typ arrives (others are
// returned too, in order), failing the test after a generous bound.
func waitEvent(t *testing.T, e *Endpoint, typ EventType) (Event, []Event) {
	t.Helper()
	var seen []Event
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		ev, ok := e.NextEvent()
		if !ok {
			time.Sleep(5 * time.Millisecond)
			continue
		}
		seen = append(seen, ev)
		if ev.Type == typ {
			return ev, seen
		}
	}
	t.Fatalf("no event of type %d; saw %+v", typ, seen)
	return Event{}, nil
}

func TestTrySendKeepsOrderMixedWithSend(t *testing.T) {
	a := newTestEndpoint(t, "a")
	b := newTestEndpoint(t, "b")
	to := PeerAt(b.LocalAddr())
	const n = 600
	ctx := sendCtx(t)
	for i := 0; i < n; i++ {
		msg := []byte(fmt.Sprint(i))
		// The first messages go out before any connection exists, so
		// they wait in the queue while the blocking sends arrive.
		if i%3 == 2 {
			require.NoError(t, a.Send(ctx, b.LocalAddr(), team(1), "mixed", msg))
			continue
		}
		for {
			_, err := a.TrySend(to, team(1), "mixed", msg)
			if errors.Is(err, ErrWouldBlock) {
				time.Sleep(time.Millisecond)
				continue
			}
			require.NoError(t, err)
			break
		}
	}
	got := recvN(t, b, n, 20*time.Second)
	for i, r := range got {
		require.Equal(t, fmt.Sprint(i), string(r.msg), "message %d out of order", i)
	}
	require.Zero(t, a.Stats().SendsFailed)
}

func TestTrySendToSilentPeerFailsWithEventsAndRefusesBeyondBudget(t *testing.T) {
	cfg := peerConfig(t, "a")
	cfg.MaxOutboundBytesPerPeer = 1000
	cfg.ConnectTimeout = 500 * time.Millisecond
	a := newEndpoint(t, cfg)
	var mu sync.Mutex
	var readiness []bool
	a.SetSendNotify(func(ready bool) {
		mu.Lock()
		readiness = append(readiness, ready)
		mu.Unlock()
	})
	hole := silentPeer(t)
	var ids []uint64
	var refused error
	for i := 0; i < 100; i++ {
		id, err := a.TrySend(PeerAt(hole), team(1), "lost", make([]byte, 100))
		if err != nil {
			refused = err
			break
		}
		ids = append(ids, id)
	}
	require.ErrorIs(t, refused, ErrWouldBlock)
	require.NotEmpty(t, ids)
	// A blocking send queued behind them fails as they do, not before.
	err := a.Send(sendCtx(t), hole, team(1), "lost", []byte("blocking"))
	require.ErrorIs(t, err, ErrConnection)
	// A peer that never answers is a connection failure, not a timeout
	// of the send (the C API maps a deadline in the chain to TIMEOUT).
	require.NotErrorIs(t, err, context.DeadlineExceeded)
	require.NotErrorIs(t, err, ErrTimeout)
	failed := map[uint64]bool{}
	for len(failed) < len(ids) {
		ev, _ := waitEvent(t, a, EventSendFailed)
		require.ErrorIs(t, ev.Err, ErrConnection)
		require.NotErrorIs(t, ev.Err, context.DeadlineExceeded)
		require.Equal(t, "lost", ev.Channel.Label)
		require.Equal(t, hole.String(), ev.Peer)
		failed[ev.ID] = true
	}
	for _, id := range ids {
		require.True(t, failed[id], "no event for message %d", id)
	}
	require.Equal(t, uint64(len(ids)), a.Stats().SendsFailed)
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []bool{true, false, true}, readiness, "the send notifier should go unready at the refusal and ready once drained")
}

func TestCloseConnectionAsyncAndShutdownReportEvents(t *testing.T) {
	a := newTestEndpoint(t, "a")
	b := newTestEndpoint(t, "b")
	ctx := sendCtx(t)
	require.NoError(t, a.Send(ctx, b.LocalAddr(), team(1), "x", []byte("hi")))
	recvN(t, b, 1, 10*time.Second)
	ev, _ := waitEvent(t, a, EventPeerConnected)
	require.Equal(t, b.LocalAddr(), ev.Addr)
	require.Equal(t, b.peerFingerprint(), ev.PeerID)

	id, err := a.CloseConnectionAsync(PeerAt(b.LocalAddr()))
	require.NoError(t, err)
	// The connection ends (PeerDisconnected) before or after the close's
	// own event; both come.
	got := map[EventType]Event{}
	deadline := time.Now().Add(20 * time.Second)
	for len(got) < 2 && time.Now().Before(deadline) {
		if ev, ok := a.NextEvent(); ok {
			got[ev.Type] = ev
		} else {
			time.Sleep(5 * time.Millisecond)
		}
	}
	ev = got[EventCloseFinished]
	require.Equal(t, id, ev.ID)
	require.NoError(t, ev.Err)
	ev = got[EventPeerDisconnected]
	require.Equal(t, EventPeerDisconnected, ev.Type)
	require.NoError(t, ev.Err, "a graceful close is no error")
	require.Equal(t, b.peerFingerprint(), ev.PeerID)

	sid := a.Shutdown()
	require.Equal(t, sid, a.Shutdown(), "a second Shutdown returns the first id")
	_, err = a.TrySend(PeerAt(b.LocalAddr()), team(1), "x", nil)
	require.ErrorIs(t, err, ErrClosed)
	require.ErrorIs(t, a.Send(ctx, b.LocalAddr(), team(1), "x", nil), ErrClosed)
	ev, _ = waitEvent(t, a, EventShutdownFinished)
	require.Equal(t, sid, ev.ID)
	require.NoError(t, ev.Err)
	require.NoError(t, a.Close())
}

func TestShutdownFailsQueuedMessagesItCannotSend(t *testing.T) {
	cfg := peerConfig(t, "a")
	cfg.ConnectTimeout = 3 * time.Second
	cfg.SendTimeout = 4 * time.Second
	cfg.DrainTimeout = 200 * time.Millisecond
	a := newEndpoint(t, cfg)
	hole := silentPeer(t)
	for i := 0; i < 5; i++ {
		_, err := a.TrySend(PeerAt(hole), team(1), "x", []byte("m"))
		require.NoError(t, err)
	}
	a.Shutdown()
	ev, seen := waitEvent(t, a, EventShutdownFinished)
	require.ErrorIs(t, ev.Err, ErrUnconfirmed)
	require.Equal(t, uint64(5), ev.Unconfirmed)
	fails := 0
	for _, s := range seen {
		if s.Type == EventSendFailed {
			require.ErrorIs(t, s.Err, ErrClosed)
			fails++
		}
	}
	require.Equal(t, 5, fails)
	var ue *UnconfirmedError
	require.ErrorAs(t, a.Close(), &ue)
	require.Equal(t, uint64(5), ue.Messages)
}

func TestHandshakeRejectedIsAnEvent(t *testing.T) {
	other, err := certgen.NewCA("other CA")
	require.NoError(t, err)
	p, err := other.Issue("stranger", certgen.PeerOptions{})
	require.NoError(t, err)
	cfg := peerConfig(t, "stranger")
	cfg.CertPEM, cfg.KeyPEM = p.CertPEM, p.KeyPEM
	stranger := newEndpoint(t, cfg)
	b := newTestEndpoint(t, "b")
	err = stranger.Send(sendCtx(t), b.LocalAddr(), team(1), "x", []byte("hi"))
	require.ErrorIs(t, err, ErrTLS)
	ev, _ := waitEvent(t, b, EventHandshakeRejected)
	require.Equal(t, stranger.LocalAddr(), ev.Addr)
	require.ErrorIs(t, ev.Err, ErrTLS)
	ev, _ = waitEvent(t, stranger, EventHandshakeRejected)
	require.Equal(t, b.LocalAddr(), ev.Addr)
}

// fakeResolver answers from a map; names not in it wait for the context.
type fakeResolver map[string][]netip.Addr

func (f fakeResolver) LookupNetIP(ctx context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := f[host]; ok {
		return a, nil
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

func TestHostNames(t *testing.T) {
	cfg := peerConfig(t, "a")
	cfg.ResolveTimeout = 300 * time.Millisecond
	cfg.Resolver = fakeResolver{"peer.example": {netip.MustParseAddr("::1"), netip.MustParseAddr("127.0.0.1")}}
	a := newEndpoint(t, cfg)
	b := newTestEndpoint(t, "b")
	p, err := ParsePeer(fmt.Sprintf("Peer.Example:%d", b.LocalAddr().Port()))
	require.NoError(t, err)
	require.NoError(t, a.SendTo(sendCtx(t), p, team(1), "n", []byte("by name")))
	_, err = a.TrySend(p, team(1), "n", []byte("queued by name"))
	require.NoError(t, err)
	got := recvN(t, b, 2, 10*time.Second)
	require.Equal(t, "by name", string(got[0].msg))
	require.Equal(t, "queued by name", string(got[1].msg))
	// The IPv4 socket picks the IPv4 answer; the peer sees our address.
	ev, _ := waitEvent(t, a, EventPeerConnected)
	require.Equal(t, b.LocalAddr(), ev.Addr)
	require.Equal(t, 1, int(a.Stats().OpenConnections))

	silent, err := ParsePeer("silent.example:4433")
	require.NoError(t, err)
	err = a.SendTo(sendCtx(t), silent, team(1), "n", []byte("x"))
	require.ErrorIs(t, err, ErrResolve)
	require.Contains(t, err.Error(), "silent.example")
	id, err := a.TrySend(silent, team(1), "n", []byte("x"))
	require.NoError(t, err, "a non-blocking send never waits for a resolution")
	ev, _ = waitEvent(t, a, EventSendFailed)
	require.Equal(t, id, ev.ID)
	require.ErrorIs(t, ev.Err, ErrResolve)
	require.Equal(t, "silent.example:4433", ev.Peer)
}

func TestRealLocalhostResolves(t *testing.T) {
	a := newTestEndpoint(t, "a")
	b := newTestEndpoint(t, "b")
	p, err := ParsePeer(fmt.Sprintf("localhost:%d", b.LocalAddr().Port()))
	require.NoError(t, err)
	require.NoError(t, a.SendTo(sendCtx(t), p, team(1), "n", []byte("hi")))
	got := recvN(t, b, 1, 10*time.Second)
	require.Equal(t, a.LocalAddr(), got[0].ch.Addr, "received messages carry the IP address")
}

func TestParsePeer(t *testing.T) {
	for _, ok := range []string{"peer.example:1", "a-b.c_d:65535", "localhost:4433", "127.0.0.1:80", "[::1]:80", "x.example.:9"} {
		_, err := ParsePeer(ok)
		require.NoError(t, err, ok)
	}
	for _, bad := range []string{"", "peer.example", "peer.example:0", "peer.example:080", "peer.example:70000", "-bad.example:1",
		"a..b:1", "sp ace:1", "1.2.3.999:80", strings.Repeat("a", 64) + ".example:1", strings.Repeat("a.", 127) + "ab:1", "[::1:80", "peer.example:+1"} {
		_, err := ParsePeer(bad)
		require.ErrorIs(t, err, ErrBadAddress, bad)
	}
}

func TestEventOverflowIsCounted(t *testing.T) {
	cfg := peerConfig(t, "a")
	cfg.MaxEvents = 2
	cfg.ConnectTimeout = 200 * time.Millisecond
	a := newEndpoint(t, cfg)
	// Five queued messages to a silent peer: five SendFailed events.
	hole := silentPeer(t)
	for i := 0; i < 5; i++ {
		_, err := a.TrySend(PeerAt(hole), team(1), "x", []byte("m"))
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return a.Stats().EventsDropped == 3 }, 10*time.Second, 5*time.Millisecond)
	ev1, ok := a.NextEvent()
	require.True(t, ok)
	require.Zero(t, ev1.DroppedBefore)
	_, ok = a.NextEvent()
	require.True(t, ok)
	_, ok = a.NextEvent()
	require.False(t, ok)
	// The outcome of a call is kept even when the queue is full.
	_, err := a.TrySend(PeerAt(hole), team(1), "x", []byte("m"))
	require.NoError(t, err)
	_, err = a.TrySend(PeerAt(hole), team(1), "x", []byte("m"))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return a.Stats().SendsFailed == 7 }, 10*time.Second, 5*time.Millisecond)
	b := newTestEndpoint(t, "b")
	id, err := a.CloseConnectionAsync(PeerAt(b.LocalAddr()))
	require.NoError(t, err)
	ev, seen := waitEvent(t, a, EventCloseFinished)
	require.Equal(t, id, ev.ID)
	require.Len(t, seen, 3, "two SendFailed events fit, the close's outcome is kept beyond the limit")
	require.Equal(t, uint64(3), seen[0].DroppedBefore, "the first event after the drops counts them")
	require.Equal(t, uint64(3), a.Stats().EventsDropped)
}

// recordHandler keeps log records.
type recordHandler struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.recs = append(h.recs, r)
	h.mu.Unlock()
	return nil
}
func (h *recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordHandler) WithGroup(string) slog.Handler      { return h }

func (h *recordHandler) find(level slog.Level, substr string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.recs {
		if r.Level == level && strings.Contains(r.Message, substr) {
			return true
		}
	}
	return false
}

func TestLogLevels(t *testing.T) {
	var logs recordHandler
	cfg := peerConfig(t, "b")
	cfg.Logger = slog.New(&logs)
	b := newEndpoint(t, cfg)
	a := newTestEndpoint(t, "a")
	require.NoError(t, a.Send(sendCtx(t), b.LocalAddr(), team(1), "x", []byte("hi")))
	recvN(t, b, 1, 10*time.Second)
	require.Eventually(t, func() bool { return logs.find(slog.LevelInfo, a.LocalAddr().String()+" is up") }, 10*time.Second, 5*time.Millisecond)

	other, err := certgen.NewCA("other CA")
	require.NoError(t, err)
	p, err := other.Issue("stranger", certgen.PeerOptions{})
	require.NoError(t, err)
	scfg := peerConfig(t, "stranger")
	scfg.CertPEM, scfg.KeyPEM = p.CertPEM, p.KeyPEM
	stranger := newEndpoint(t, scfg)
	require.ErrorIs(t, stranger.Send(sendCtx(t), b.LocalAddr(), team(1), "x", nil), ErrTLS)
	require.Eventually(t, func() bool {
		return logs.find(slog.LevelWarn, "handshake with "+stranger.LocalAddr().String()+" rejected")
	}, 10*time.Second, 5*time.Millisecond)
}

func TestNameResolvingToAnUntrustedPeerIsRefused(t *testing.T) {
	other, err := certgen.NewCA("other CA")
	require.NoError(t, err)
	p, err := other.Issue("impostor", certgen.PeerOptions{})
	require.NoError(t, err)
	icfg := peerConfig(t, "impostor")
	icfg.CertPEM, icfg.KeyPEM = p.CertPEM, p.KeyPEM
	impostor := newEndpoint(t, icfg)
	cfg := peerConfig(t, "a")
	cfg.Resolver = fakeResolver{"peer.example": {impostor.LocalAddr().Addr()}}
	a := newEndpoint(t, cfg)
	to, err := ParsePeer(fmt.Sprintf("peer.example:%d", impostor.LocalAddr().Port()))
	require.NoError(t, err)
	require.ErrorIs(t, a.SendTo(sendCtx(t), to, team(1), "x", []byte("secret")), ErrTLS)
	_, _, err = impostor.Receive(make([]byte, 64))
	require.ErrorIs(t, err, ErrWouldBlock, "nothing reaches a peer the CA does not vouch for")
}

// countingResolver answers every name with one address and counts the
// lookups.
type countingResolver struct {
	mu      sync.Mutex
	lookups int
	addr    netip.Addr
}

func (r *countingResolver) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lookups++
	return []netip.Addr{r.addr}, nil
}

func TestResolvedAddressesAreCachedFor30Seconds(t *testing.T) {
	look := &countingResolver{addr: netip.MustParseAddr("127.0.0.1")}
	r := newResolver(look, time.Second, netip.MustParseAddrPort("127.0.0.1:1"))
	now := time.Unix(1_000_000, 0)
	r.now = func() time.Time { return now }
	p, err := ParsePeer("peer.example:4433")
	require.NoError(t, err)
	for i := 0; i < 3; i++ {
		_, err := r.resolve(context.Background(), p)
		require.NoError(t, err)
	}
	require.Equal(t, 1, look.lookups, "answers are reused while fresh")
	now = now.Add(resolveCacheFor - time.Second)
	_, err = r.resolve(context.Background(), p)
	require.NoError(t, err)
	require.Equal(t, 1, look.lookups)
	now = now.Add(2 * time.Second)
	_, err = r.resolve(context.Background(), p)
	require.NoError(t, err)
	require.Equal(t, 2, look.lookups, "an answer older than 30 s is looked up again")
}
