package core

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Hostile tests of the non-blocking sends, the outbound queues, events and
// host names. Each bound below is a fail-safe against a hang, never a
// check of how long something took.

// drainEvents takes every waiting event.
func drainEvents(e *Endpoint) []Event {
	var out []Event
	for {
		ev, ok := e.NextEvent()
		if !ok {
			return out
		}
		out = append(out, ev)
	}
}

// waitFor polls cond until it holds, failing the test after a generous
// bound with what describe says.
func waitFor(t *testing.T, what string, cond func() bool, describe func() string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s never happened: %s", what, describe())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A close_nowait by host name takes its turn after the messages already
// queued for that peer, also when the name's answer is cached and the
// messages went to the address's queue: its CLOSE_FINISHED comes after
// those messages were confirmed, and the connection they used is closed.
func TestHostileCloseAsyncByCachedNameWaitsForQueuedMessages(t *testing.T) {
	b := newTestEndpoint(t, "b")
	cfg := peerConfig(t, "a")
	cfg.Resolver = fakeResolver{"peer.example": {netip.MustParseAddr("127.0.0.1")}}
	a := newEndpoint(t, cfg)
	name, err := ParsePeer(fmt.Sprintf("peer.example:%d", b.LocalAddr().Port()))
	require.NoError(t, err)

	// Resolve the name (cached from now on), then close the connection so
	// that the next messages have to wait for a dial.
	require.NoError(t, a.SendTo(sendCtx(t), name, team(1), "c", []byte("warm")))
	recvN(t, b, 1, 10*time.Second)
	require.NoError(t, a.CloseConnectionTo(name))
	require.Zero(t, a.Stats().OpenConnections)

	const n = 20
	for i := 0; i < n; i++ {
		_, err := a.TrySend(name, team(1), "c", []byte(fmt.Sprint(i)))
		require.NoError(t, err)
	}
	id, err := a.CloseConnectionAsync(name)
	require.NoError(t, err)
	var ev Event
	waitFor(t, "CLOSE_FINISHED", func() bool {
		for _, e := range drainEvents(a) {
			if e.Type == EventCloseFinished && e.ID == id {
				ev = e
				return true
			}
		}
		return false
	}, func() string { return fmt.Sprintf("%+v", a.Stats()) })
	require.NoError(t, ev.Err)
	st := a.Stats()
	require.Zero(t, st.OutboundMessages, "CLOSE_FINISHED came while messages queued before the close were still waiting: the close did not take its turn")
	require.Equal(t, uint64(1+n), b.Stats().MessagesReceived, "the close reported every accepted message confirmed before they reached the peer")
	got := recvN(t, b, n, 10*time.Second)
	for i, r := range got {
		require.Equal(t, fmt.Sprint(i), string(r.msg))
	}
	require.Zero(t, a.Stats().OpenConnections, "the connection the queued messages used outlived the close that came after them")
}

// Once a name's answer is cached, sends by name and by address share one
// order: a message sent by name after the resolution is not overtaken by a
// later message sent to the address.
func TestHostileNameAndAddressShareOrderAfterResolution(t *testing.T) {
	bcfg := peerConfig(t, "b")
	bcfg.MaxMessageSize = 64 << 10
	bcfg.MaxQueueBytes = 64 << 10
	b := newEndpoint(t, bcfg)
	cfg := peerConfig(t, "a")
	cfg.Resolver = fakeResolver{"peer.example": {netip.MustParseAddr("127.0.0.1")}}
	cfg.MaxOutboundBytesPerPeer = 64 << 20
	cfg.SendTimeout = 30 * time.Second
	a := newEndpoint(t, cfg)
	name, err := ParsePeer(fmt.Sprintf("peer.example:%d", b.LocalAddr().Port()))
	require.NoError(t, err)
	addr := PeerAt(b.LocalAddr())

	// More than the peer's windows hold, sent by name before the name was
	// ever resolved: they queue under the name and keep its queue busy
	// while b does not read.
	const bulk = 160
	chunk := make([]byte, 60<<10)
	for i := 0; i < bulk; i++ {
		binary.BigEndian.PutUint32(chunk, uint32(i))
		_, err := a.TrySend(name, team(1), "o", chunk)
		require.NoError(t, err)
	}
	waitFor(t, "the name's resolution", func() bool {
		_, ok := a.res.cached(name)
		return ok
	}, func() string { return "not cached" })
	// The answer is cached: from here on the header promises one order.
	_, err = a.TrySend(name, team(1), "o", []byte("by name"))
	require.NoError(t, err)
	_, err = a.TrySend(addr, team(1), "o", []byte("by address"))
	require.NoError(t, err)

	got := recvN(t, b, bulk+2, 30*time.Second)
	pos := map[string]int{}
	for i, r := range got {
		if len(r.msg) < 100 {
			pos[string(r.msg)] = i
		}
	}
	require.Less(t, pos["by name"], pos["by address"], "a message sent by name after the name was resolved was overtaken by a later one sent to the address (positions %v of %d)", pos, len(got))
}

// slowResolver never answers: every lookup waits for its context.
type slowResolver struct{ lookups atomic.Int64 }

func (r *slowResolver) LookupNetIP(ctx context.Context, _, _ string) ([]netip.Addr, error) {
	r.lookups.Add(1)
	<-ctx.Done()
	return nil, ctx.Err()
}

// The non-blocking calls never wait for the network, a dial or a
// resolution: a goroutine makes them in a loop against a peer that never
// answers and a name that never resolves, with every network timeout long,
// and must get through its loop; the test watches its progress counter.
func TestHostileNowaitCallsNeverWaitForNetwork(t *testing.T) {
	cfg := peerConfig(t, "a")
	cfg.ConnectTimeout = 60 * time.Second
	cfg.HandshakeTimeout = 60 * time.Second
	cfg.SendTimeout = 120 * time.Second
	cfg.ResolveTimeout = 60 * time.Second
	cfg.DrainTimeout = 300 * time.Millisecond
	cfg.MaxOutboundBytesPerPeer = 1 << 20
	res := &slowResolver{}
	cfg.Resolver = res
	a := newEndpoint(t, cfg)
	hole := PeerAt(silentPeer(t))
	slow, err := ParsePeer("slow.example:4433")
	require.NoError(t, err)

	var progress atomic.Int64
	done := make(chan error, 1)
	msg := make([]byte, 1000)
	go func() {
		done <- func() error {
			for i := 0; i < 300; i++ {
				for _, to := range []Peer{hole, slow} {
					if _, err := a.TrySend(to, team(1), "nw", msg); err != nil && !errors.Is(err, ErrWouldBlock) {
						return fmt.Errorf("TrySend: %w", err)
					}
					if _, err := a.TrySendSync(to, 7, msg[:10]); err != nil && !errors.Is(err, ErrWouldBlock) {
						return fmt.Errorf("TrySendSync: %w", err)
					}
					if _, _, err := a.TrySendBatch(to, team(1), "nw", 3, func(int) ([]byte, error) { return msg[:100], nil }); err != nil && !errors.Is(err, ErrWouldBlock) {
						return fmt.Errorf("TrySendBatch: %w", err)
					}
					if _, err := a.CloseConnectionAsync(to); err != nil {
						return fmt.Errorf("CloseConnectionAsync: %w", err)
					}
				}
				a.NextEvent()
				a.Stats()
				progress.Add(1)
			}
			a.Shutdown()
			for i := 0; i < 50; i++ {
				if _, err := a.TrySend(hole, team(1), "nw", msg); !errors.Is(err, ErrClosed) {
					return fmt.Errorf("TrySend after Shutdown: %v", err)
				}
				if _, err := a.CloseConnectionAsync(slow); !errors.Is(err, ErrClosed) {
					return fmt.Errorf("CloseConnectionAsync after Shutdown: %v", err)
				}
				a.Shutdown()
				progress.Add(1)
			}
			return nil
		}()
	}()
	// Far below every network timeout above: a loop that waits for the
	// network even once does not finish within it.
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatalf("the loop of non-blocking calls is stuck after %d of 350 rounds", progress.Load())
	}
	require.NotZero(t, res.lookups.Load(), "the name was never looked up")
	ev, _ := waitEvent(t, a, EventShutdownFinished)
	require.ErrorIs(t, ev.Err, ErrUnconfirmed)
}

// A shutdown while messages and a blocking send wait behind a dial that
// cannot finish: the blocking send returns ErrClosed, each queued message
// gets exactly one SEND_FAILED (ErrClosed), the shutdown's outcome counts
// them, nothing follows SHUTDOWN_FINISHED, the send notifier is ready
// again and the gauges are back to zero.
func TestHostileShutdownWithSendQueuedBehindDial(t *testing.T) {
	cfg := peerConfig(t, "a")
	cfg.ConnectTimeout = 30 * time.Second
	cfg.HandshakeTimeout = 30 * time.Second
	cfg.SendTimeout = 60 * time.Second
	cfg.DrainTimeout = 300 * time.Millisecond
	cfg.MaxOutboundBytesPerPeer = 2500
	a := newEndpoint(t, cfg)
	var mu sync.Mutex
	var readiness []bool
	a.SetSendNotify(func(ready bool) {
		mu.Lock()
		readiness = append(readiness, ready)
		mu.Unlock()
	})
	hole := PeerAt(silentPeer(t))
	ids := map[uint64]bool{}
	for i := 0; ; i++ {
		id, err := a.TrySend(hole, team(1), "q", make([]byte, 1000))
		if errors.Is(err, ErrWouldBlock) {
			break
		}
		require.NoError(t, err)
		ids[id] = true
		require.Less(t, i, 10)
	}
	blocked := make(chan error, 1)
	go func() { blocked <- a.SendTo(context.Background(), hole, team(1), "q", []byte("blocking")) }()
	waitFor(t, "the blocking send to queue", func() bool { return a.out.pending.Load() == int64(len(ids)+1) },
		func() string { return fmt.Sprintf("%+v", a.Stats()) })
	closeID, err := a.CloseConnectionAsync(hole)
	require.NoError(t, err)
	sid := a.Shutdown()
	select {
	case err := <-blocked:
		require.ErrorIs(t, err, ErrClosed)
	case <-time.After(20 * time.Second):
		t.Fatal("the blocking send queued behind the dial did not return after Shutdown")
	}
	ev, seen := waitEvent(t, a, EventShutdownFinished)
	require.Equal(t, sid, ev.ID)
	require.ErrorIs(t, ev.Err, ErrUnconfirmed)
	require.Equal(t, uint64(len(ids)), ev.Unconfirmed)
	failed := map[uint64]int{}
	closes := 0
	for _, s := range seen {
		switch s.Type {
		case EventSendFailed:
			require.True(t, ids[s.ID], "SEND_FAILED for id %d, which was never accepted", s.ID)
			require.ErrorIs(t, s.Err, ErrClosed)
			failed[s.ID]++
		case EventCloseFinished:
			require.Equal(t, closeID, s.ID)
			closes++
		}
	}
	require.Len(t, failed, len(ids))
	for id, n := range failed {
		require.Equal(t, 1, n, "id %d failed %d times", id, n)
	}
	require.Equal(t, 1, closes, "the queued close has one outcome")
	var ue *UnconfirmedError
	require.ErrorAs(t, a.Close(), &ue)
	require.Equal(t, uint64(len(ids)), ue.Messages)
	extra := drainEvents(a)
	require.Empty(t, extra, "events after SHUTDOWN_FINISHED")
	st := a.Stats()
	require.Zero(t, st.OutboundMessages)
	require.Zero(t, st.OutboundBytes)
	require.Equal(t, uint64(len(ids)), st.SendsFailed)
	mu.Lock()
	defer mu.Unlock()
	require.NotEmpty(t, readiness)
	require.True(t, readiness[len(readiness)-1], "the send notifier stayed unready after the queue that refused was failed at shutdown: %v", readiness)
}

// Many goroutines send without waiting to a silent peer and to a live one,
// close both in a loop and take events, with room for one event: every
// close gets exactly one CLOSE_FINISHED, SEND_FAILED ids are unique and
// were accepted, the drop counts add up, and SHUTDOWN_FINISHED is the last
// event.
func TestHostileEventsUnderConcurrencyWithOneSlot(t *testing.T) {
	b := newTestEndpoint(t, "b")
	cfg := peerConfig(t, "a")
	cfg.MaxEvents = 1
	cfg.ConnectTimeout = 150 * time.Millisecond
	cfg.DrainTimeout = 500 * time.Millisecond
	cfg.MaxOutboundBytesPerPeer = 4000
	a := newEndpoint(t, cfg)
	hole := PeerAt(silentPeer(t))
	live := PeerAt(b.LocalAddr())

	var mu sync.Mutex
	accepted := map[uint64]Peer{}
	closes := map[uint64]bool{}
	var events []Event
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for r := 0; r < 2; r++ {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				ev, ok := a.NextEvent()
				if ok {
					mu.Lock()
					events = append(events, ev)
					mu.Unlock()
					continue
				}
				select {
				case <-stop:
					return
				default:
					time.Sleep(time.Millisecond)
				}
			}
		}()
	}
	// b's queue is drained so that it keeps confirming.
	go func() {
		buf := make([]byte, 4096)
		for {
			if _, _, err := b.ReceiveContext(context.Background(), buf); errors.Is(err, ErrClosed) {
				return
			}
		}
	}()
	var workers sync.WaitGroup
	for w := 0; w < 4; w++ {
		workers.Add(1)
		go func(w int) {
			defer workers.Done()
			for i := 0; i < 150; i++ {
				to := hole
				if (i+w)%2 == 0 {
					to = live
				}
				switch i % 5 {
				case 4:
					id, err := a.CloseConnectionAsync(to)
					if !assert.NoError(t, err) {
						continue
					}
					mu.Lock()
					assert.False(t, closes[id], "id %d issued twice", id)
					closes[id] = true
					mu.Unlock()
				case 3:
					n, first, err := a.TrySendBatch(to, team(1), "ev", 3, func(int) ([]byte, error) { return []byte("batch"), nil })
					if err != nil {
						assert.ErrorIs(t, err, ErrWouldBlock)
					}
					mu.Lock()
					for k := 0; k < n; k++ {
						assert.NotContains(t, accepted, first+uint64(k))
						accepted[first+uint64(k)] = to
					}
					mu.Unlock()
				default:
					id, err := a.TrySend(to, team(1), "ev", []byte("single"))
					if err != nil {
						assert.ErrorIs(t, err, ErrWouldBlock)
						continue
					}
					mu.Lock()
					assert.NotContains(t, accepted, id)
					accepted[id] = to
					mu.Unlock()
				}
			}
		}(w)
	}
	workers.Wait()
	sid := a.Shutdown()
	waitFor(t, "SHUTDOWN_FINISHED", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(events) > 0 && events[len(events)-1].Type == EventShutdownFinished
	}, func() string { return fmt.Sprintf("%+v", a.Stats()) })
	<-a.Done()
	close(stop)
	readers.Wait()
	events = append(events, drainEvents(a)...)

	mu.Lock()
	defer mu.Unlock()
	last := events[len(events)-1]
	require.Equal(t, EventShutdownFinished, last.Type, "an event came after SHUTDOWN_FINISHED")
	require.Equal(t, sid, last.ID)
	closeSeen := map[uint64]int{}
	failSeen := map[uint64]int{}
	var dropped uint64
	for _, ev := range events {
		dropped += ev.DroppedBefore
		switch ev.Type {
		case EventCloseFinished:
			closeSeen[ev.ID]++
		case EventSendFailed:
			_, ok := accepted[ev.ID]
			require.True(t, ok, "SEND_FAILED for id %d, never accepted", ev.ID)
			failSeen[ev.ID]++
		case EventShutdownFinished:
			require.Equal(t, last, ev, "two SHUTDOWN_FINISHED events")
		}
	}
	for id := range closes {
		require.Equal(t, 1, closeSeen[id], "close %d finished %d times", id, closeSeen[id])
	}
	require.Len(t, closeSeen, len(closes), "CLOSE_FINISHED for an id no close returned")
	for id, n := range failSeen {
		require.Equal(t, 1, n, "SEND_FAILED for id %d %d times", id, n)
	}
	st := a.Stats()
	require.Equal(t, st.EventsDropped, dropped, "the drop counts carried by the events do not add up to the stats")
	require.GreaterOrEqual(t, st.SendsFailed, uint64(len(failSeen)))
	require.LessOrEqual(t, st.SendsFailed, uint64(len(failSeen))+dropped)
	require.Zero(t, st.OutboundMessages)
	require.Zero(t, st.OutboundBytes)
}

// Tiny budgets: an empty queue takes one message of any size, the next is
// refused (and nothing of it is accepted: it is never delivered and gets
// no event), the total budget refuses a second peer's first message while
// another queue waits, a batch stops at the refusal with exactly the
// accepted ids reported, and once everything drained the notifier is
// ready and the gauges are zero.
func TestHostileTinyBudgets(t *testing.T) {
	bcfg := peerConfig(t, "b")
	b := newEndpoint(t, bcfg)
	cfg := peerConfig(t, "a")
	cfg.MaxOutboundBytesPerPeer = 1
	cfg.MaxOutboundBytes = 1
	cfg.ConnectTimeout = 300 * time.Millisecond
	a := newEndpoint(t, cfg)
	var mu sync.Mutex
	var readiness []bool
	a.SetSendNotify(func(ready bool) {
		mu.Lock()
		readiness = append(readiness, ready)
		mu.Unlock()
	})
	hole := PeerAt(silentPeer(t))
	live := PeerAt(b.LocalAddr())

	// Live peer, no connection yet: the first message (bigger than both
	// budgets) is queued, the second refused.
	big := make([]byte, 300<<10)
	big[0] = 'B'
	_, err := a.TrySend(live, team(1), "t", big)
	require.NoError(t, err)
	_, err = a.TrySend(live, team(1), "t", []byte("refused"))
	require.ErrorIs(t, err, ErrWouldBlock)
	// Even a zero-length message: the queue holds more than its budget.
	_, err = a.TrySend(live, team(1), "t", nil)
	require.ErrorIs(t, err, ErrWouldBlock)
	// The silent peer's queue is empty, but the total is over its budget.
	_, err = a.TrySend(hole, team(1), "t", []byte("x"))
	require.ErrorIs(t, err, ErrWouldBlock)
	n, _, err := a.TrySendBatch(hole, team(1), "t", 3, func(int) ([]byte, error) { return []byte("x"), nil })
	require.ErrorIs(t, err, ErrWouldBlock)
	require.Zero(t, n)

	got := recvN(t, b, 1, 10*time.Second)
	require.Equal(t, big, got[0].msg)
	waitFor(t, "the queues to drain", func() bool { return a.Stats().OutboundMessages == 0 }, func() string { return fmt.Sprintf("%+v", a.Stats()) })
	// Now the silent peer's queue takes one message; a batch of three
	// stops after it.
	n, first, err := a.TrySendBatch(hole, team(1), "t", 3, func(int) ([]byte, error) { return []byte("x"), nil })
	require.ErrorIs(t, err, ErrWouldBlock)
	require.Equal(t, 1, n)
	ev, _ := waitEvent(t, a, EventSendFailed)
	require.Equal(t, first, ev.ID)
	require.ErrorIs(t, ev.Err, ErrConnection)
	waitFor(t, "the queues to drain", func() bool { return a.Stats().OutboundMessages == 0 }, func() string { return fmt.Sprintf("%+v", a.Stats()) })
	st := a.Stats()
	require.Zero(t, st.OutboundBytes)
	require.Equal(t, uint64(1), st.SendsFailed)
	require.Empty(t, drainEvents(a), "events beyond the one failure")
	_, _, err = b.Receive(make([]byte, 16))
	require.ErrorIs(t, err, ErrWouldBlock, "a refused message was delivered")
	mu.Lock()
	defer mu.Unlock()
	require.True(t, readiness[len(readiness)-1], "send notifier stuck unready: %v", readiness)
}

// Budgets at the top of their range do not overflow: a huge per-peer and
// total budget take messages as usual.
func TestHostileHugeBudgets(t *testing.T) {
	b := newTestEndpoint(t, "b")
	cfg := peerConfig(t, "a")
	cfg.MaxOutboundBytesPerPeer = ^uint64(0)
	cfg.MaxOutboundBytes = ^uint64(0)
	a := newEndpoint(t, cfg)
	for i := 0; i < 50; i++ {
		_, err := a.TrySend(PeerAt(b.LocalAddr()), team(1), "h", make([]byte, 20000))
		require.NoError(t, err)
	}
	recvN(t, b, 50, 10*time.Second)
	waitFor(t, "the queue to drain", func() bool { return a.Stats().OutboundMessages == 0 }, func() string { return fmt.Sprintf("%+v", a.Stats()) })
	require.Zero(t, a.Stats().OutboundBytes)
}

// A refusal for the total budget leaves nothing behind for the refused
// peer: once the queues drained, no per-peer state is kept for the peers
// that were only ever refused (with many peers or host names it would
// grow without bound).
func TestHostileRefusedPeersLeaveNoQueues(t *testing.T) {
	cfg := peerConfig(t, "a")
	cfg.MaxOutboundBytes = 10
	cfg.ConnectTimeout = 300 * time.Millisecond
	a := newEndpoint(t, cfg)
	hole := silentPeer(t)
	_, err := a.TrySend(PeerAt(hole), team(1), "r", make([]byte, 100))
	require.NoError(t, err)
	for port := 1; port <= 500; port++ {
		p, err := ParsePeer(fmt.Sprintf("refused-%d.example:%d", port, port))
		require.NoError(t, err)
		_, err = a.TrySend(p, team(1), "r", []byte("x"))
		require.ErrorIs(t, err, ErrWouldBlock)
	}
	waitEvent(t, a, EventSendFailed)
	waitFor(t, "the queue to drain", func() bool { return a.Stats().OutboundMessages == 0 }, func() string { return fmt.Sprintf("%+v", a.Stats()) })
	a.out.mu.Lock()
	left := len(a.out.m)
	a.out.mu.Unlock()
	require.Zero(t, left, "outbound queues kept for peers that were only refused")
}

// nameResolver answers from a map and counts lookups; names not in it do
// not exist.
type nameResolver struct {
	mu      sync.Mutex
	answers map[string][]netip.Addr
	asked   []string
}

func (r *nameResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.asked = append(r.asked, host)
	if a, ok := r.answers[host]; ok {
		return a, nil
	}
	return nil, fmt.Errorf("no such host %q", host)
}

// Host names in their corner cases: several answers of which only some
// fit the socket, only IPv6 for an IPv4 socket, the longest name, a
// trailing dot, upper case, characters a name cannot have, and a name
// that resolves to the endpoint's own address.
func TestHostileHostNames(t *testing.T) {
	b := newTestEndpoint(t, "b")
	port := b.LocalAddr().Port()
	label := strings.Repeat("a", 63)
	longest := strings.Join([]string{label, label, label, strings.Repeat("b", 61)}, ".") // 253 bytes
	require.Len(t, longest, 253)
	res := &nameResolver{answers: map[string][]netip.Addr{
		"mixed.example": {netip.MustParseAddr("0.0.0.0"), netip.MustParseAddr("224.0.0.1"), netip.MustParseAddr("::1"),
			netip.MustParseAddr("::ffff:127.0.0.1"), netip.MustParseAddr("10.255.255.1")},
		"six.example": {netip.MustParseAddr("::1"), netip.MustParseAddr("fe80::1")},
		longest:       {netip.MustParseAddr("127.0.0.1")},
	}}
	cfg := peerConfig(t, "a")
	cfg.Resolver = res
	cfg.ConnectTimeout = 500 * time.Millisecond
	a := newEndpoint(t, cfg)
	res.mu.Lock()
	res.answers["me.example"] = []netip.Addr{a.LocalAddr().Addr()}
	res.mu.Unlock()

	// Mixed answers: the first unicast IPv4 one (mapped) is used.
	mixed, err := ParsePeer(fmt.Sprintf("mixed.example:%d", port))
	require.NoError(t, err)
	_, err = a.TrySend(mixed, team(1), "h", []byte("mixed"))
	require.NoError(t, err)
	got := recvN(t, b, 1, 10*time.Second)
	require.Equal(t, "mixed", string(got[0].msg))

	// The longest name, with a trailing dot and in upper case.
	p, err := ParsePeer(strings.ToUpper(longest) + ".:" + fmt.Sprint(port))
	require.NoError(t, err)
	_, err = a.TrySend(p, team(1), "h", []byte("long"))
	require.NoError(t, err)
	got = recvN(t, b, 1, 10*time.Second)
	require.Equal(t, "long", string(got[0].msg))
	_, err = ParsePeer(longest + "c:1")
	require.ErrorIs(t, err, ErrBadAddress, "254 bytes")
	_, err = ParsePeer(longest + "..:1")
	require.ErrorIs(t, err, ErrBadAddress, "two trailing dots")

	// Only IPv6 answers for an IPv4 socket: RESOLVE, by event and for a
	// blocking send.
	six, err := ParsePeer(fmt.Sprintf("six.example:%d", port))
	require.NoError(t, err)
	id, err := a.TrySend(six, team(1), "h", []byte("six"))
	require.NoError(t, err)
	ev, _ := waitEvent(t, a, EventSendFailed)
	require.Equal(t, id, ev.ID)
	require.ErrorIs(t, ev.Err, ErrResolve)
	require.False(t, ev.Channel.Addr.IsValid())
	require.ErrorIs(t, a.SendTo(sendCtx(t), six, team(1), "h", nil), ErrResolve)

	// A name for this endpoint's own address: BAD_ADDRESS, never a dial.
	me, err := ParsePeer(fmt.Sprintf("me.example:%d", a.LocalAddr().Port()))
	require.NoError(t, err)
	dials := a.Stats().Dials
	id, err = a.TrySend(me, team(1), "h", []byte("me"))
	require.NoError(t, err)
	ev, _ = waitEvent(t, a, EventSendFailed)
	require.Equal(t, id, ev.ID)
	require.ErrorIs(t, ev.Err, ErrBadAddress)
	require.ErrorIs(t, a.SendTo(sendCtx(t), me, team(1), "h", nil), ErrBadAddress)
	cid, err := a.CloseConnectionAsync(me)
	require.NoError(t, err)
	ev, _ = waitEvent(t, a, EventCloseFinished)
	require.Equal(t, cid, ev.ID)
	require.Equal(t, dials, a.Stats().Dials)

	// Characters no name has.
	for _, bad := range []string{"sp ace.example:1", "star*.example:1", "ü.example:1", "a/b:1", "a\x00b:1", "-lead.example:1",
		"trail-.example:1", ".dot.example:1", "a..b:1", "x.example:1:2", "x.example:-1", "x.example:65536", "x.example: 1"} {
		_, err := ParsePeer(bad)
		require.ErrorIs(t, err, ErrBadAddress, "%q", bad)
	}
	_, err = a.TrySend(Peer{}, team(1), "h", nil)
	require.ErrorIs(t, err, ErrBadAddress, "the zero Peer")
	_, err = a.CloseConnectionAsync(Peer{})
	require.ErrorIs(t, err, ErrBadAddress, "the zero Peer")
}

// chaosMsg builds message seq of the main channel: its seq, its length,
// then bytes that depend on both, so that a cut, shifted or swapped
// message does not match.
func chaosMsg(seq, size int) []byte {
	m := make([]byte, size)
	binary.BigEndian.PutUint64(m, uint64(seq))
	binary.BigEndian.PutUint32(m[8:], uint32(size))
	for i := 12; i < size; i++ {
		m[i] = byte(seq*31 + i)
	}
	return m
}

// chaosSeq reads a message's seq, reporting (without stopping: it runs on
// the library's goroutines too) one that is cut or corrupted.
func chaosSeq(t *testing.T, m []byte) int {
	t.Helper()
	if !assert.GreaterOrEqual(t, len(m), 12) {
		return -1
	}
	seq := int(binary.BigEndian.Uint64(m))
	assert.Equal(t, uint32(len(m)), binary.BigEndian.Uint32(m[8:]), "message %d cut", seq)
	assert.True(t, string(chaosMsg(seq, len(m))) == string(m), "message %d corrupted", seq)
	return seq
}

// tinyMsg is message seq of the sync channel: 0 to 7 bytes, each seq%256.
func tinyMsg(seq int) []byte {
	return bytes.Repeat([]byte{byte(seq)}, []int{0, 1, 2, 7}[seq%4])
}

// Two channels to one peer, sent with blocking and non-blocking single and
// batch calls mixed, with messages from 0 bytes to over 1 MiB, while the
// connection is closed with close_nowait over and over and the peer
// restarts on the same port. Every accepted message is delivered exactly
// once and in order, or reported: by a SEND_FAILED event (then it is never
// delivered) or counted unconfirmed.
func TestHostileOrderAndLossUnderClosesAndRestarts(t *testing.T) {
	t.Run("closes", func(t *testing.T) { hostileOrderAndLoss(t, 0, false) })
	t.Run("restarts", func(t *testing.T) { hostileOrderAndLoss(t, 3, false) })
	t.Run("crashes", func(t *testing.T) { hostileOrderAndLoss(t, 3, true) })
}

func hostileOrderAndLoss(t *testing.T, restarts int, crash bool) {
	const n = 160
	sizes := []int{12, 100, 5000, 16384, 300 << 10, 13, 1<<20 + 3, 64 << 10}

	var mu sync.Mutex
	var instance int
	delivered := map[int][]int{} // main channel seqs, per instance
	var tinyGot [][]byte
	onMessage := func(inst int) func(ch *Channel, msg []byte) {
		return func(ch *Channel, msg []byte) {
			mu.Lock()
			defer mu.Unlock()
			if ch.Kind == KindSync {
				tinyGot = append(tinyGot, append([]byte(nil), msg...))
				return
			}
			delivered[inst] = append(delivered[inst], chaosSeq(t, msg))
		}
	}
	bcfg := peerConfig(t, "b")
	bcfg.MaxMessageSize = 2 << 20
	bcfg.OnMessage = onMessage(0)
	bcfg.DrainTimeout = 2 * time.Second
	b, err := NewEndpoint(bcfg)
	require.NoError(t, err)
	bcfg.BindAddr = b.LocalAddr().String()
	to := PeerAt(b.LocalAddr())

	cfg := peerConfig(t, "a")
	cfg.MaxMessageSize = 2 << 20
	cfg.MaxOutboundBytesPerPeer = 8 << 20
	cfg.ConnectTimeout = 2 * time.Second
	cfg.SendTimeout = 10 * time.Second
	cfg.DrainTimeout = 2 * time.Second
	a := newEndpoint(t, cfg)

	type acceptedMsg struct {
		seq  int
		tiny bool
	}
	var amu sync.Mutex
	acceptedMain := map[int]bool{}
	var acceptedTiny [][]byte
	ids := map[uint64]acceptedMsg{}
	closeIDs := map[uint64]bool{}
	var refused atomic.Int64

	retry := func(f func() error) error {
		for i := 0; ; i++ {
			err := f()
			if !errors.Is(err, ErrWouldBlock) || i > 20000 {
				return err
			}
			time.Sleep(time.Millisecond)
		}
	}
	stopRestarts := make(chan struct{})
	restarted := make(chan struct{})
	var crashed []*Endpoint
	defer func() {
		for _, e := range crashed {
			_ = e.Close()
		}
	}()
	go func() {
		defer close(restarted)
		for r := 0; r < restarts; r++ {
			select {
			case <-stopRestarts:
				return
			case <-time.After(400 * time.Millisecond):
			}
			if crash {
				// The socket goes away without a word to the peer, as
				// when the process dies.
				old := b
				_ = old.udp.Close()
				crashed = append(crashed, old)
			} else {
				assert.NoError(t, b.Close())
			}
			time.Sleep(30 * time.Millisecond)
			mu.Lock()
			instance++
			bcfg.OnMessage = onMessage(instance)
			mu.Unlock()
			nb, err := NewEndpoint(bcfg)
			if !assert.NoError(t, err) {
				return
			}
			b = nb
		}
	}()
	var senders sync.WaitGroup
	senders.Add(2)
	go func() { // the main channel
		defer senders.Done()
		ctx := context.Background()
		for seq := 0; seq < n; {
			size := sizes[seq%len(sizes)]
			switch seq % 4 {
			case 0:
				var id uint64
				err := retry(func() (err error) { id, err = a.TrySend(to, team(1), "main", chaosMsg(seq, size)); return err })
				if assert.NoError(t, err) {
					amu.Lock()
					acceptedMain[seq], ids[id] = true, acceptedMsg{seq: seq}
					amu.Unlock()
				}
				seq++
			case 1:
				if err := a.SendTo(ctx, to, team(1), "main", chaosMsg(seq, size)); err == nil {
					amu.Lock()
					acceptedMain[seq] = true
					amu.Unlock()
				} else {
					refused.Add(1)
				}
				seq++
			case 2:
				base := seq
				var k int
				var first uint64
				err := retry(func() (err error) {
					var got int
					got, first, err = a.TrySendBatch(to, team(1), "main", 3-k, func(i int) ([]byte, error) {
						return chaosMsg(base+k+i, sizes[(base+k+i)%len(sizes)]), nil
					})
					amu.Lock()
					for i := 0; i < got; i++ {
						acceptedMain[base+k+i], ids[first+uint64(i)] = true, acceptedMsg{seq: base + k + i}
					}
					amu.Unlock()
					k += got
					return err
				})
				assert.NoError(t, err)
				seq += 3
			case 3:
				base := seq
				got, err := a.SendBatchTo(ctx, to, team(1), "main", 2, func(i int) ([]byte, error) {
					return chaosMsg(base+i, sizes[(base+i)%len(sizes)]), nil
				})
				amu.Lock()
				for i := 0; i < got; i++ {
					acceptedMain[base+i] = true
				}
				amu.Unlock()
				if err != nil {
					refused.Add(1)
				}
				seq += 2
			}
			if seq%7 == 0 {
				id, err := a.CloseConnectionAsync(to)
				if assert.NoError(t, err) {
					amu.Lock()
					closeIDs[id] = true
					amu.Unlock()
				}
			}
		}
	}()
	go func() { // the sync channel: tiny messages
		defer senders.Done()
		for seq := 0; seq < 4*n; seq++ {
			m := tinyMsg(seq)
			if seq%3 == 0 {
				if a.SendSyncTo(context.Background(), to, 5, m) == nil {
					amu.Lock()
					acceptedTiny = append(acceptedTiny, m)
					amu.Unlock()
				}
				continue
			}
			var id uint64
			err := retry(func() (err error) { id, err = a.TrySendSync(to, 5, m); return err })
			if assert.NoError(t, err) {
				amu.Lock()
				acceptedTiny = append(acceptedTiny, m)
				ids[id] = acceptedMsg{seq: len(acceptedTiny) - 1, tiny: true}
				amu.Unlock()
			}
		}
	}()
	senders.Wait()
	close(stopRestarts)
	<-restarted
	a.Shutdown()
	_, events := waitEvent(t, a, EventShutdownFinished)
	require.NoError(t, b.Close())

	mu.Lock()
	defer mu.Unlock()
	amu.Lock()
	defer amu.Unlock()
	failedMain := map[int]bool{}
	failedTiny := 0
	closesSeen := map[uint64]int{}
	for _, ev := range events {
		switch ev.Type {
		case EventSendFailed:
			m, ok := ids[ev.ID]
			require.True(t, ok, "SEND_FAILED for id %d, never accepted", ev.ID)
			if m.tiny {
				failedTiny++
			} else {
				require.False(t, failedMain[m.seq], "two SEND_FAILED for message %d", m.seq)
				failedMain[m.seq] = true
			}
		case EventCloseFinished:
			closesSeen[ev.ID]++
		}
	}
	for id := range closeIDs {
		require.Equal(t, 1, closesSeen[id], "close %d", id)
	}
	// PEER_CONNECTED and PEER_DISCONNECTED alternate, starting with
	// CONNECTED; at the end the peer is reported gone.
	var presence []EventType
	for _, ev := range events {
		if ev.Type == EventPeerConnected || ev.Type == EventPeerDisconnected {
			require.Equal(t, to.String(), ev.Peer)
			presence = append(presence, ev.Type)
		}
	}
	require.NotEmpty(t, presence)
	for i, typ := range presence {
		want := EventPeerConnected
		if i%2 == 1 {
			want = EventPeerDisconnected
		}
		require.Equal(t, want, typ, "peer events out of turn at %d: %v", i, presence)
	}
	require.Equal(t, EventPeerDisconnected, presence[len(presence)-1], "the last connection's end was not reported before SHUTDOWN_FINISHED")
	st := a.Stats()
	// Main channel: exactly once, in order, never a refused or failed one.
	seen := map[int]bool{}
	last := -1
	for inst := 0; inst <= instance; inst++ {
		for _, seq := range delivered[inst] {
			require.False(t, seen[seq], "message %d delivered twice", seq)
			seen[seq] = true
			require.True(t, acceptedMain[seq], "message %d delivered but never accepted", seq)
			require.False(t, failedMain[seq], "message %d delivered and reported failed", seq)
			require.Greater(t, seq, last, "message %d delivered after %d (instance %d)", seq, last, inst)
			last = seq
		}
	}
	lost := 0
	for seq := range acceptedMain {
		if !seen[seq] && !failedMain[seq] {
			lost++
		}
	}
	// Tiny channel: what arrived is an in-order subsequence of what was
	// accepted.
	j := 0
	for _, m := range tinyGot {
		for j < len(acceptedTiny) && string(acceptedTiny[j]) != string(m) {
			j++
		}
		require.Less(t, j, len(acceptedTiny), "tiny messages out of order or never accepted")
		j++
	}
	lostTiny := len(acceptedTiny) - len(tinyGot) - failedTiny
	require.GreaterOrEqual(t, lostTiny, 0, "more tiny messages delivered or failed than accepted")
	t.Logf("main: %d accepted, %d delivered, %d failed, %d lost; tiny: %d accepted, %d delivered, %d failed; %d not accepted; unconfirmed %d, sends failed %d, restarts %d",
		len(acceptedMain), len(seen), len(failedMain), lost, len(acceptedTiny), len(tinyGot), failedTiny, refused.Load(), st.MessagesUnconfirmed, st.SendsFailed, instance)
	require.LessOrEqual(t, uint64(lost+max(lostTiny, 0)), st.MessagesUnconfirmed, "accepted messages neither delivered nor reported")
	require.Equal(t, uint64(len(failedMain)+failedTiny), st.SendsFailed)
	require.Zero(t, st.OutboundMessages)
	require.Zero(t, st.OutboundBytes)
	if restarts == 0 {
		// The peer stayed up and every close was graceful: nothing may be
		// lost, failed or left unconfirmed.
		require.Zero(t, lost+max(lostTiny, 0))
		require.Zero(t, st.SendsFailed)
		require.Zero(t, st.MessagesUnconfirmed)
		require.Zero(t, refused.Load())
	}
	if restarts == 0 {
		// The peer stayed up and every close was graceful: nothing may be
		// lost, failed or left unconfirmed.
		require.Zero(t, lost+max(lostTiny, 0))
		require.Zero(t, st.SendsFailed)
		require.Zero(t, st.MessagesUnconfirmed)
		require.Zero(t, refused.Load())
	}
}

// side is one endpoint of TestHostileBothSides and what it saw.
type side struct {
	e        *Endpoint
	mu       sync.Mutex
	got      map[string][]int // label: seqs received, in order
	accepted map[string]map[int]bool
	ids      map[uint64][2]any // id: label, seq
	closeIDs map[uint64]bool
}

func (s *side) onMessage(ch *Channel, msg []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got[ch.Label] = append(s.got[ch.Label], int(binary.BigEndian.Uint32(msg)))
}

// Both ends of one connection send to each other at once from several
// goroutines each (non-blocking and blocking sends, batches, closes in a
// loop, event readers), then one shuts down while the other keeps
// sending, then the other. Per channel: in order, at most once, only
// accepted messages; failures only for accepted ids and once each; every
// close answered once; SHUTDOWN_FINISHED last; nothing lost unreported.
func TestHostileBothSides(t *testing.T) {
	mk := func(name string) *side {
		s := &side{got: map[string][]int{}, accepted: map[string]map[int]bool{}, ids: map[uint64][2]any{}, closeIDs: map[uint64]bool{}}
		cfg := peerConfig(t, name)
		cfg.OnMessage = s.onMessage
		cfg.MaxEvents = 8
		cfg.ConnectTimeout = 300 * time.Millisecond
		cfg.DrainTimeout = time.Second
		s.e = newEndpoint(t, cfg)
		return s
	}
	a, b := mk("a"), mk("b")
	var evs [2][]Event
	var wg sync.WaitGroup
	var stopReaders, stopped atomic.Bool
	var readers sync.WaitGroup
	for i, s := range []*side{a, b} {
		readers.Add(1)
		go func(i int, s *side) {
			defer readers.Done()
			for !stopReaders.Load() || !func() bool {
				select {
				case <-s.e.Done():
					return true
				default:
					return false
				}
			}() {
				if ev, ok := s.e.NextEvent(); ok {
					s.mu.Lock()
					evs[i] = append(evs[i], ev)
					s.mu.Unlock()
				} else {
					time.Sleep(time.Millisecond)
				}
			}
		}(i, s)
	}
	send := func(from, to *side, label string, mode int) {
		defer wg.Done()
		peer := PeerAt(to.e.LocalAddr())
		from.mu.Lock()
		from.accepted[label] = map[int]bool{}
		from.mu.Unlock()
		after := 0
		for seq := 0; seq < 300; seq++ {
			// Once the other side is gone, a few more sends meet it
			// closed; the rest would only wait for dials nobody answers.
			if stopped.Load() {
				if after++; after > 10 {
					return
				}
			}
			m := make([]byte, 4+seq%3000)
			binary.BigEndian.PutUint32(m, uint32(seq))
			var id uint64
			var err error
			switch {
			case mode == 1 && seq%2 == 0:
				err = from.e.SendTo(context.Background(), peer, team(1), label, m)
			case mode == 2 && seq%25 == 0:
				var cid uint64
				cid, err = from.e.CloseConnectionAsync(peer)
				if err == nil {
					from.mu.Lock()
					from.closeIDs[cid] = true
					from.mu.Unlock()
				}
				id, err = from.e.TrySend(peer, team(1), label, m)
			default:
				id, err = from.e.TrySend(peer, team(1), label, m)
			}
			switch {
			case err == nil:
				from.mu.Lock()
				from.accepted[label][seq] = true
				if id != 0 {
					from.ids[id] = [2]any{label, seq}
				}
				from.mu.Unlock()
			case errors.Is(err, ErrWouldBlock):
				time.Sleep(time.Millisecond)
			case errors.Is(err, ErrClosed):
				return
			}
		}
	}
	for mode := 0; mode < 3; mode++ {
		wg.Add(2)
		go send(a, b, fmt.Sprintf("a%d", mode), mode)
		go send(b, a, fmt.Sprintf("b%d", mode), mode)
	}
	waitFor(t, "traffic", func() bool { return a.e.Stats().MessagesReceived > 200 && b.e.Stats().MessagesReceived > 200 },
		func() string { return "no traffic" })
	a.e.Shutdown()
	<-a.e.Done()
	stopped.Store(true)
	wg.Wait()
	b.e.Shutdown()
	<-b.e.Done()
	stopReaders.Store(true)
	readers.Wait()
	for i, s := range []*side{a, b} {
		other := []*side{b, a}[i]
		s.mu.Lock()
		evs[i] = append(evs[i], drainEvents(s.e)...)
		require.NotEmpty(t, evs[i])
		require.Equal(t, EventShutdownFinished, evs[i][len(evs[i])-1].Type, "side %d: not the last event", i)
		failed := map[[2]any]bool{}
		closes := map[uint64]int{}
		for _, ev := range evs[i] {
			switch ev.Type {
			case EventSendFailed:
				m, ok := s.ids[ev.ID]
				require.True(t, ok, "side %d: SEND_FAILED for unknown id %d", i, ev.ID)
				require.False(t, failed[m], "side %d: %v failed twice", i, m)
				failed[m] = true
			case EventCloseFinished:
				closes[ev.ID]++
			}
		}
		for id := range s.closeIDs {
			require.Equal(t, 1, closes[id], "side %d: close %d", i, id)
		}
		st := s.e.Stats()
		other.mu.Lock()
		lost := 0
		for label, acc := range s.accepted {
			last := -1
			seen := map[int]bool{}
			for _, seq := range other.got[label] {
				require.True(t, acc[seq], "%s: %d delivered, never accepted", label, seq)
				require.False(t, seen[seq], "%s: %d twice", label, seq)
				require.False(t, failed[[2]any{label, seq}], "%s: %d delivered and failed", label, seq)
				require.Greater(t, seq, last, "%s: %d after %d", label, seq, last)
				seen[seq], last = true, seq
			}
			for seq := range acc {
				if !seen[seq] && !failed[[2]any{label, seq}] {
					lost++
				}
			}
		}
		other.mu.Unlock()
		// SEND_FAILED events dropped for lack of room still count in
		// SendsFailed: they report messages this test cannot name.
		unnamed := st.SendsFailed - uint64(len(failed))
		require.LessOrEqual(t, uint64(lost), st.MessagesUnconfirmed+unnamed, "side %d: accepted messages neither delivered nor reported (stats %+v, failed events %d)", i, st, len(failed))
		require.Zero(t, st.OutboundMessages)
		s.mu.Unlock()
	}
}

// Queued messages whose send timeout passes before their turn (the peer
// does not read) fail with SEND_FAILED (TIMEOUT) and are never delivered;
// the others arrive once, in order, also those over 256 KiB that were
// partly written when their time ran out; a close afterwards confirms
// everything that was not reported.
func TestHostileSendTimeoutWhileQueued(t *testing.T) {
	bcfg := peerConfig(t, "b")
	bcfg.MaxMessageSize = 1 << 20
	bcfg.MaxQueueBytes = 1 << 20
	b := newEndpoint(t, bcfg)
	cfg := peerConfig(t, "a")
	cfg.MaxMessageSize = 1 << 20
	cfg.SendTimeout = 700 * time.Millisecond
	cfg.ConnectTimeout = 300 * time.Millisecond
	cfg.MaxOutboundBytesPerPeer = 64 << 20
	a := newEndpoint(t, cfg)
	to := PeerAt(b.LocalAddr())
	sizes := []int{12, 300 << 10, 5000, 600 << 10, 1 << 20, 64 << 10, 13}
	seqOf := map[uint64]int{}
	const n = 60
	for seq := 0; seq < n; seq++ {
		id, err := a.TrySend(to, team(1), "to", chaosMsg(seq, sizes[seq%len(sizes)]))
		require.NoError(t, err)
		seqOf[id] = seq
	}
	waitFor(t, "every message handed over or failed", func() bool { return a.Stats().OutboundMessages == 0 },
		func() string { return fmt.Sprintf("%+v", a.Stats()) })
	failed := map[int]bool{}
	for _, ev := range drainEvents(a) {
		if ev.Type != EventSendFailed {
			continue
		}
		seq, ok := seqOf[ev.ID]
		require.True(t, ok)
		require.ErrorIs(t, ev.Err, ErrTimeout)
		require.False(t, failed[seq])
		failed[seq] = true
	}
	require.NotEmpty(t, failed, "no message timed out: the test did not test anything")
	got := recvN(t, b, n-len(failed), 20*time.Second)
	last := -1
	for _, r := range got {
		seq := chaosSeq(t, r.msg)
		require.False(t, failed[seq], "message %d was reported failed and delivered", seq)
		require.Greater(t, seq, last)
		last = seq
	}
	require.NoError(t, a.CloseConnection(b.LocalAddr()))
	_, _, err := b.Receive(make([]byte, 1<<20))
	require.ErrorIs(t, err, ErrWouldBlock, "more messages than accepted and not failed")
	require.Zero(t, a.Stats().MessagesUnconfirmed)
}

// A queued message larger than the peer accepts fails alone (TOO_LARGE);
// the messages around it go through, in order.
func TestHostileOverPeerLimitFailsAlone(t *testing.T) {
	bcfg := peerConfig(t, "b")
	bcfg.MaxMessageSize = 1000
	bcfg.MaxQueueBytes = 1000
	b := newEndpoint(t, bcfg)
	a := newTestEndpoint(t, "a")
	to := PeerAt(b.LocalAddr())
	var bigIDs []uint64
	for round := 0; round < 2; round++ { // queued before the dial, then on the live connection
		_, err := a.TrySend(to, team(1), "l", []byte(fmt.Sprint("s", round)))
		require.NoError(t, err)
		id, err := a.TrySend(to, team(1), "l", make([]byte, 1001))
		require.NoError(t, err)
		bigIDs = append(bigIDs, id)
		_, err = a.TrySend(to, team(1), "l", []byte(fmt.Sprint("t", round)))
		require.NoError(t, err)
		got := recvN(t, b, 2, 10*time.Second)
		require.Equal(t, fmt.Sprint("s", round), string(got[0].msg))
		require.Equal(t, fmt.Sprint("t", round), string(got[1].msg))
	}
	for _, id := range bigIDs {
		ev, _ := waitEvent(t, a, EventSendFailed)
		require.Equal(t, id, ev.ID)
		require.ErrorIs(t, ev.Err, ErrMessageTooLarge)
	}
}

// The outbound gauges count "messages queued by send_nowait, not yet
// handed to a stream" (the header's words): neither a queued close nor a
// blocking send waiting behind the queue is such a message.
func TestHostileOutboundGaugeCountsOnlyQueuedMessages(t *testing.T) {
	cfg := peerConfig(t, "a")
	cfg.ConnectTimeout = 30 * time.Second
	cfg.HandshakeTimeout = 30 * time.Second
	cfg.SendTimeout = 60 * time.Second
	cfg.DrainTimeout = 300 * time.Millisecond
	a := newEndpoint(t, cfg)
	hole := PeerAt(silentPeer(t))
	_, err := a.TrySend(hole, team(1), "g", []byte("queued"))
	require.NoError(t, err)
	_, err = a.CloseConnectionAsync(hole)
	require.NoError(t, err)
	st := a.Stats()
	require.Equal(t, uint64(1), st.OutboundMessages, "a queued close counts as a message")
	go func() { _ = a.SendTo(context.Background(), hole, team(1), "g", []byte("blocking")) }()
	waitFor(t, "the blocking send to queue", func() bool {
		a.out.mu.Lock()
		defer a.out.mu.Unlock()
		b := a.out.m[hole]
		return b != nil && b.pending == 3
	}, func() string { return "not queued" })
	st = a.Stats()
	require.Equal(t, uint64(1), st.OutboundMessages, "a blocking send waiting behind the queue counts as a message queued by TrySend")
	require.Equal(t, uint64(len("queued")), st.OutboundBytes)
}

// One channel whose reader is stuck (the peer's callback for it does not
// return) must not make the non-blocking sends of another channel to the
// same peer fail: the blocking sends of the two channels do not wait on
// each other, and the peer reads the other channel.
func TestHostileStuckChannelDoesNotFailOtherChannels(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	var fast []string
	bcfg := peerConfig(t, "b")
	bcfg.OnMessage = func(ch *Channel, msg []byte) {
		if ch.Label == "slow" {
			<-release
			return
		}
		mu.Lock()
		fast = append(fast, string(msg))
		mu.Unlock()
	}
	b := newEndpoint(t, bcfg)
	defer close(release)
	cfg := peerConfig(t, "a")
	cfg.SendTimeout = 2 * time.Second
	cfg.ConnectTimeout = time.Second
	cfg.MaxOutboundBytesPerPeer = 64 << 20
	a := newEndpoint(t, cfg)
	to := PeerAt(b.LocalAddr())
	// The blocking sends: the fast channel goes through while the slow
	// one is stuck.
	require.NoError(t, a.SendTo(sendCtx(t), to, team(1), "slow", []byte("first")))
	chunk := make([]byte, 64<<10)
	for i := 0; i < 100; i++ {
		_, err := a.TrySend(to, team(1), "slow", chunk)
		require.NoError(t, err)
	}
	fastIDs := map[uint64]bool{}
	for i := 0; i < 10; i++ {
		id, err := a.TrySend(to, team(1), "fast", []byte(fmt.Sprint("fast ", i)))
		require.NoError(t, err)
		fastIDs[id] = true
	}
	waitFor(t, "the queue to settle", func() bool { return a.Stats().OutboundMessages == 0 },
		func() string { return fmt.Sprintf("%+v", a.Stats()) })
	failedFast := 0
	for _, ev := range drainEvents(a) {
		if ev.Type == EventSendFailed && fastIDs[ev.ID] {
			failedFast++
		}
	}
	mu.Lock()
	defer mu.Unlock()
	require.Zero(t, failedFast, "messages of a healthy channel failed behind a stuck channel of the same peer (%d of them delivered)", len(fast))
}
