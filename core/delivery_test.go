package core

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// deliveryWait bounds waits for something that should happen; it only
// turns a lost message into a failure instead of a hang.
const deliveryWait = 30 * time.Second

// deliveryMsg is message i of channel c: its index first, then a pattern
// of both; every tenth is empty, and some are larger than the stream
// reader's buffer, so that both delivery paths (straight from the buffer,
// or read in full first) are taken.
func deliveryMsg(c, i int) []byte {
	n := 4 + (i*7+c)%300
	switch {
	case i%10 == 9:
		return nil
	case i%37 == 0:
		n = readBufferSize + 1000 + c
	}
	b := make([]byte, n)
	for k := range b {
		b[k] = byte(c*31 + i + k)
	}
	binary.LittleEndian.PutUint32(b, uint32(i))
	return b
}

func TestDeliveryInOrderPerChannel(t *testing.T) {
	const perChannel = 400
	type spec struct {
		team     byte
		label    string
		syncType uint32 // non-zero: a sync channel
	}
	chans := []spec{{1, "alpha", 0}, {1, "beta", 0}, {2, "alpha", 0}, {2, "", 0}, {0, "", 5}}
	index := func(ch *Channel) int {
		for i, s := range chans {
			if s.syncType != 0 {
				if ch.Kind == KindSync && ch.SyncType == s.syncType {
					return i
				}
				continue
			}
			if ch.Kind == KindChannel && ch.TeamID == team(s.team) && ch.Label == s.label {
				return i
			}
		}
		return -1
	}

	var (
		mu       sync.Mutex
		got      = make([][][]byte, len(chans))
		chanSeen []Channel
		inside   = make([]atomic.Int32, len(chans))
		overlaps atomic.Int32
		unknown  atomic.Int32
		total    atomic.Int32
	)
	cfg := peerConfig(t, "bob")
	cfg.OnMessage = func(ch *Channel, msg []byte) {
		c := index(ch)
		if c < 0 {
			unknown.Add(1)
			return
		}
		if inside[c].Add(1) != 1 {
			overlaps.Add(1)
		}
		mu.Lock()
		got[c] = append(got[c], append([]byte(nil), msg...))
		chanSeen = append(chanSeen, *ch)
		mu.Unlock()
		// Linger now and then, so that a second call of this channel, if
		// there were one, would find this one still running.
		if len(msg) >= 4 && binary.LittleEndian.Uint32(msg)%50 == 0 {
			time.Sleep(200 * time.Microsecond)
		}
		inside[c].Add(-1)
		total.Add(1)
	}
	bob := newEndpoint(t, cfg)
	alice := newTestEndpoint(t, "alice")
	ctx := sendCtx(t)

	var wg sync.WaitGroup
	errs := make([]error, len(chans))
	for c, s := range chans {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perChannel {
				var err error
				if s.syncType != 0 {
					err = alice.SendSync(ctx, bob.LocalAddr(), s.syncType, deliveryMsg(c, i))
				} else {
					err = alice.Send(ctx, bob.LocalAddr(), team(s.team), s.label, deliveryMsg(c, i))
				}
				if err != nil {
					errs[c] = fmt.Errorf("channel %d message %d: %w", c, i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	want := int32(len(chans) * perChannel)
	require.Eventually(t, func() bool { return total.Load() >= want }, deliveryWait, time.Millisecond)
	// Nothing is queued: the callback had every message.
	_, _, err := bob.Receive(make([]byte, 64))
	require.ErrorIs(t, err, ErrWouldBlock)

	require.Zero(t, overlaps.Load(), "calls of one channel overlapped")
	require.Zero(t, unknown.Load(), "messages on channels never sent to")
	require.Equal(t, want, total.Load())
	mu.Lock()
	defer mu.Unlock()
	for c := range chans {
		require.Len(t, got[c], perChannel, "channel %d", c)
		for i, m := range got[c] {
			require.Equal(t, len(deliveryMsg(c, i)), len(m), "channel %d message %d", c, i)
			if len(m) > 0 {
				require.Equal(t, deliveryMsg(c, i), m, "channel %d message %d", c, i)
			}
		}
	}
	for _, ch := range chanSeen {
		require.Equal(t, alice.LocalAddr(), ch.Addr)
		require.Equal(t, alice.peerFingerprint(), ch.PeerID)
	}
}

// Close waits for the calls in progress and makes no more: a call held
// when Close starts has returned when Close returns, and none starts
// afterwards although the peer keeps sending on two channels.
func TestDeliveryCloseWaitsAndStops(t *testing.T) {
	const holdAt = 10
	var (
		calls, inside, flowCalls atomic.Int32
		late                     atomic.Int32
		holdDone, closeReturned  atomic.Bool
		held                     = make(chan struct{})
		closing                  = make(chan struct{})
	)
	cfg := peerConfig(t, "bob")
	cfg.OnMessage = func(ch *Channel, msg []byte) {
		inside.Add(1)
		defer inside.Add(-1)
		calls.Add(1)
		if closeReturned.Load() {
			late.Add(1)
		}
		if ch.Label == "hold" {
			if binary.LittleEndian.Uint32(msg) == holdAt {
				close(held)
				select {
				case <-closing:
				case <-time.After(2 * deliveryWait):
				}
				// Outstay bob's drain, which would otherwise end only
				// once this call returned (alice's stream cannot finish
				// before), so that only the wait for the call itself
				// keeps Close from returning.
				time.Sleep(500 * time.Millisecond)
				holdDone.Store(true)
			}
		} else {
			flowCalls.Add(1)
			time.Sleep(200 * time.Microsecond)
		}
		if closeReturned.Load() {
			late.Add(1)
		}
	}
	cfg.DrainTimeout = 100 * time.Millisecond
	bob := newEndpoint(t, cfg)
	acfg := peerConfig(t, "alice")
	acfg.SendTimeout = time.Second
	acfg.DrainTimeout = 300 * time.Millisecond
	alice := newEndpoint(t, acfg)

	var stop atomic.Bool
	var wg sync.WaitGroup
	for _, label := range []string{"hold", "flow"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg := make([]byte, 64)
			for i := uint32(0); !stop.Load(); {
				binary.LittleEndian.PutUint32(msg, i)
				if err := alice.Send(t.Context(), bob.LocalAddr(), team(3), label, msg); err != nil {
					if errors.Is(err, ErrClosed) {
						return
					}
					time.Sleep(5 * time.Millisecond) // bob is gone: keep trying, gently
					continue
				}
				i++
			}
		}()
	}
	defer func() {
		stop.Store(true)
		wg.Wait()
	}()

	select {
	case <-held:
	case <-time.After(deliveryWait):
		t.Fatal("the hold channel's message never reached the callback")
	}
	require.Eventually(t, func() bool { return flowCalls.Load() >= 20 }, deliveryWait, time.Millisecond)

	close(closing)
	require.NoError(t, bob.Close())
	insideAtReturn, doneAtReturn, callsAtReturn := inside.Load(), holdDone.Load(), calls.Load()
	closeReturned.Store(true)
	require.True(t, doneAtReturn, "Close returned while a call was still running")
	require.Zero(t, insideAtReturn, "a call was running when Close returned")

	time.Sleep(300 * time.Millisecond) // alice keeps sending meanwhile
	stop.Store(true)
	wg.Wait()
	require.Zero(t, late.Load(), "a call ran after Close returned")
	require.Equal(t, callsAtReturn, calls.Load())
}

// A channel whose stream is superseded (the sender gave up on the
// connection and sent again on a new one) keeps its order at the receiver:
// once a message of the newer stream was delivered, no message of the
// older one follows, even though the older stream's reader was inside the
// callback while the newer stream arrived.
func TestDeliverySupersededStreamDoesNotOvertake(t *testing.T) {
	const n = 20
	const holdAt = 3
	type rec struct {
		gen byte
		i   uint32
	}
	var (
		mu      sync.Mutex
		order   []rec
		held    = make(chan struct{})
		release = make(chan struct{})
	)
	cfg := peerConfig(t, "bob")
	cfg.OnMessage = func(ch *Channel, msg []byte) {
		r := rec{gen: msg[0], i: binary.LittleEndian.Uint32(msg[1:])}
		mu.Lock()
		order = append(order, r)
		mu.Unlock()
		if r.gen == 'o' && r.i == holdAt {
			close(held)
			select {
			case <-release:
			case <-time.After(2 * deliveryWait):
			}
		}
	}
	bob := newEndpoint(t, cfg)
	acfg := peerConfig(t, "alice")
	acfg.DrainTimeout = 300 * time.Millisecond
	alice := newEndpoint(t, acfg)
	ctx := sendCtx(t)
	send := func(gen byte, i uint32) {
		msg := make([]byte, 5)
		msg[0] = gen
		binary.LittleEndian.PutUint32(msg[1:], i)
		require.NoError(t, alice.Send(ctx, bob.LocalAddr(), team(4), "sup", msg))
	}
	for i := range uint32(n) {
		send('o', i)
	}
	select {
	case <-held:
	case <-time.After(deliveryWait):
		close(release)
		t.Fatal("the held message never reached the callback")
	}
	// The drain cannot finish while the callback holds the stream: alice
	// gives up on it (what bob had not confirmed is counted) and closes.
	err := alice.CloseConnection(bob.LocalAddr())
	var unconfirmed *UnconfirmedError
	if err != nil {
		require.ErrorAs(t, err, &unconfirmed)
	}
	for i := range uint32(n) {
		send('n', i)
	}
	close(release)
	count := func(gen byte) int {
		mu.Lock()
		defer mu.Unlock()
		k := 0
		for _, r := range order {
			if r.gen == gen {
				k++
			}
		}
		return k
	}
	require.Eventually(t, func() bool { return count('n') >= n }, deliveryWait, time.Millisecond)
	time.Sleep(100 * time.Millisecond) // room for a straggler of the old stream to show up

	mu.Lock()
	defer mu.Unlock()
	var nextOld, nextNew uint32
	for k, r := range order {
		switch r.gen {
		case 'o':
			require.Zero(t, nextNew, "old message %d delivered after new ones (position %d)", r.i, k)
			require.Equal(t, nextOld, r.i, "old messages out of order")
			nextOld++
		case 'n':
			require.Equal(t, nextNew, r.i, "new messages out of order")
			nextNew++
		default:
			t.Fatalf("unexpected message %v", r)
		}
	}
	require.Equal(t, uint32(n), nextNew)
	require.Greater(t, nextOld, uint32(holdAt))
	t.Logf("%d of the old stream's %d messages were delivered", nextOld, n)
}

// Messages taken by the receiver (queued, or returned from OnMessage) are
// confirmed to their sender while the stream stays open, not only at its
// end: a connection that dies later counts fewer than receiptEvery
// delivered messages of a stream as unconfirmed.
func TestReceiptsWhileStreamOpen(t *testing.T) {
	for _, mode := range []string{"queue", "callback"} {
		t.Run(mode, func(t *testing.T) {
			var got atomic.Int64
			rcfg := peerConfig(t, "bob")
			if mode == "callback" {
				rcfg.OnMessage = func(*Channel, []byte) { got.Add(1) }
			}
			r := newEndpoint(t, rcfg)
			s := newTestEndpoint(t, "alice")
			const n = 5 * receiptEvery
			for i := 0; i < n; i++ {
				require.NoError(t, s.Send(sendCtx(t), r.LocalAddr(), team(1), "receipts", []byte{byte(i)}))
				if mode == "queue" {
					recvN(t, r, 1, deliveryWait) // one burst per message: the slowest case
				} else {
					require.Eventually(t, func() bool { return got.Load() == int64(i+1) }, deliveryWait, 100*time.Microsecond)
				}
			}
			c, ok := s.conns.lookup(r.LocalAddr())
			require.True(t, ok, "the sender's connection is still up")
			require.Eventually(t, func() bool { return c.pendingUnconfirmed() < receiptEvery }, deliveryWait, time.Millisecond,
				"the receiver took every message but the sender still counts %d as unconfirmed", c.pendingUnconfirmed())
		})
	}
}
