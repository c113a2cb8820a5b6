package core

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// bulkPayload is message k of a channel: its index up front, then bytes
// that depend on the channel, the index and the position, so a message
// that arrives out of order, twice, cut short or spliced from two frames
// does not pass for another.
func bulkPayload(channel, k, size int) []byte {
	p := make([]byte, size)
	var idx [8]byte
	binary.BigEndian.PutUint32(idx[:4], uint32(channel))
	binary.BigEndian.PutUint32(idx[4:], uint32(k))
	n := copy(p, idx[:])
	for i := n; i < size; i++ {
		p[i] = byte(channel*131 + k*31 + i)
	}
	return p
}

// bulkSizes straddle every boundary of the send and receive paths: the
// stream reader's buffer, the non-blocking hand-over, the chunk a large
// frame is read in, the send buffer and the direct write.
var bulkSizes = []int{
	1, 64, readBufferSize - 1, readBufferSize, readBufferSize + 1,
	tryWriteMax - 3, tryWriteMax + 5, 64 << 10, 64<<10 + 1,
	directWriteMin - 1, directWriteMin, 1<<20 + 3, 0, 7,
}

// Messages of every size, sent back to back on several channels at once,
// arrive whole and in order on each channel, with the default send buffer
// and with one smaller than most messages (senders then wait for room
// while the flusher writes).
func TestBulkMixedSizesArriveWholeAndInOrder(t *testing.T) {
	for _, sendBuf := range []int{0, 8 << 10} {
		t.Run(fmt.Sprintf("sendbuf=%d", sendBuf), func(t *testing.T) {
			acfg := peerConfig(t, "alice")
			acfg.SendBufferBytes = sendBuf
			a := newEndpoint(t, acfg)
			b := newTestEndpoint(t, "bob")
			const channels, rounds = 3, 2
			per := rounds * len(bulkSizes)
			var wg sync.WaitGroup
			errs := make(chan error, channels)
			for c := 0; c < channels; c++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for k := 0; k < per; k++ {
						msg := bulkPayload(c, k, bulkSizes[k%len(bulkSizes)])
						if err := a.Send(sendCtx(t), b.LocalAddr(), team(1), fmt.Sprintf("bulk%d", c), msg); err != nil {
							errs <- fmt.Errorf("channel %d message %d: %w", c, k, err)
							return
						}
					}
				}()
			}
			next := make([]int, channels)
			for _, r := range recvN(t, b, channels*per, 60*time.Second) {
				var c int
				_, err := fmt.Sscanf(r.ch.Label, "bulk%d", &c)
				require.NoError(t, err)
				k := next[c]
				want := bulkPayload(c, k, bulkSizes[k%len(bulkSizes)])
				require.True(t, bytes.Equal(want, r.msg), "channel %d message %d: %d bytes, want %d", c, k, len(r.msg), len(want))
				next[c]++
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}

// flushers counts the goroutines running or parked in a stream's flusher.
func flushers() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Count(string(buf[:n]), "core.(*sendStream).flush(")
		}
		buf = make([]byte, 2*len(buf))
	}
}

// A stream keeps at most one flusher, which stays for the stream's next
// flushes and ends once the stream has been idle a while, so idle streams
// hold no goroutines.
func TestBulkFlusherIsReusedAndEndsWhenIdle(t *testing.T) {
	a := newTestEndpoint(t, "alice")
	b := newTestEndpoint(t, "bob")
	// Streams of earlier tests may still have theirs for a moment.
	require.Eventually(t, func() bool { return flushers() == 0 }, 10*time.Second, 10*time.Millisecond)
	// Messages over tryWriteMax go through the flusher.
	msg := make([]byte, tryWriteMax+1)
	const bursts, each = 3, 20
	for i := 0; i < bursts; i++ {
		for k := 0; k < each; k++ {
			require.NoError(t, a.Send(sendCtx(t), b.LocalAddr(), team(1), "burst", msg))
			require.LessOrEqual(t, flushers(), 1, "one stream, one flusher")
		}
		recvN(t, b, each, 10*time.Second)
	}
	require.Eventually(t, func() bool { return flushers() == 0 }, 10*time.Second, 10*time.Millisecond,
		"the flusher of an idle stream ends")
	// A stream whose flusher ended flushes with a new one.
	for k := 0; k < each; k++ {
		require.NoError(t, a.Send(sendCtx(t), b.LocalAddr(), team(1), "burst", msg))
	}
	recvN(t, b, each, 10*time.Second)
}

// Closing the connection ends a parked flusher at once rather than when
// its idle time runs out.
func TestBulkRetireEndsParkedFlusher(t *testing.T) {
	a := newTestEndpoint(t, "alice")
	b := newTestEndpoint(t, "bob")
	msg := make([]byte, tryWriteMax+1)
	for k := 0; k < 10; k++ {
		require.NoError(t, a.Send(sendCtx(t), b.LocalAddr(), team(1), "retire", msg))
	}
	recvN(t, b, 10, 10*time.Second)
	s := streamOf(t, a, b, "retire")
	require.Eventually(t, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.parked
	}, 10*time.Second, time.Millisecond, "the flusher parks when it runs out of work")
	require.NoError(t, a.CloseConnection(b.LocalAddr()))
	s.mu.Lock()
	parked := s.parked
	s.mu.Unlock()
	require.False(t, parked, "retiring the stream released its flusher")
	require.Eventually(t, func() bool { return flushers() == 0 }, 10*time.Second, 10*time.Millisecond)
}

// streamOf returns a's send stream to b for the channel label.
func streamOf(t *testing.T, a, b *Endpoint, label string) *sendStream {
	t.Helper()
	c, ok := a.conns.lookup(b.LocalAddr())
	require.True(t, ok, "a connection to the peer")
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.streams[chanKey{kind: KindChannel, teamID: team(1), label: label}]
	require.NotNil(t, s, "a stream for the channel")
	return s
}

// Every waiter wakes on a signal; a waiter whose context ends leaves
// without taking another's wake-up, and one signalled as its context ends
// reports the signal (its caller looks at the stream again).
func TestBulkWaitersWakeAndLeave(t *testing.T) {
	var s sendStream
	const n = 4
	woke := make(chan error, n+2)
	wait := func(ctx context.Context) {
		s.mu.Lock()
		err := s.waitLocked(ctx)
		s.mu.Unlock()
		woke <- err
	}
	waiting := func(k int) func() bool {
		return func() bool {
			s.mu.Lock()
			defer s.mu.Unlock()
			return len(s.waiting) == k
		}
	}
	for i := 0; i < n; i++ {
		go wait(context.Background())
	}
	require.Eventually(t, waiting(n), 10*time.Second, time.Millisecond)

	ctx, cancel := context.WithCancel(context.Background())
	go wait(ctx)
	require.Eventually(t, waiting(n+1), 10*time.Second, time.Millisecond)
	cancel()
	require.ErrorIs(t, <-woke, context.Canceled)
	require.Eventually(t, waiting(n), 10*time.Second, time.Millisecond)

	s.mu.Lock()
	s.signalLocked()
	s.mu.Unlock()
	for i := 0; i < n; i++ {
		require.NoError(t, <-woke)
	}
	require.True(t, waiting(0)())

	// Signalled and cancelled in one critical section: either way the
	// wait reports the signal.
	ctx, cancel = context.WithCancel(context.Background())
	go wait(ctx)
	require.Eventually(t, waiting(1), 10*time.Second, time.Millisecond)
	s.mu.Lock()
	cancel()
	s.signalLocked()
	s.mu.Unlock()
	require.NoError(t, <-woke)

	// Bells go back to the pool empty: a fresh wait is not woken by a
	// stale ring.
	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	go wait(ctx)
	require.ErrorIs(t, <-woke, context.DeadlineExceeded)
}

// A sender held up by a receiver that does not read gets ErrTimeout for
// the messages that were not taken, whatever their size and however they
// were to be written; retrying them duplicates nothing, and every message
// whose send returned nil arrives once, in order.
func TestBulkSendTimeoutsLeaveNothingBehind(t *testing.T) {
	acfg := peerConfig(t, "alice")
	acfg.SendTimeout = 100 * time.Millisecond
	acfg.SendBufferBytes = 64 << 10
	a := newEndpoint(t, acfg)
	bcfg := peerConfig(t, "bob")
	bcfg.MaxMessageSize = 2 << 20
	bcfg.MaxQueueBytes = 2 << 20
	b := newEndpoint(t, bcfg)

	sizes := []int{1 << 20, 64 << 10, 100, directWriteMin, 20 << 10}
	const total = 60
	var timeouts atomic.Int64
	sent := make(chan error, 1)
	go func() {
		for k := 0; k < total; {
			msg := bulkPayload(0, k, sizes[k%len(sizes)])
			err := a.Send(context.Background(), b.LocalAddr(), team(1), "held", msg)
			switch {
			case err == nil:
				k++
			case errors.Is(err, ErrTimeout):
				timeouts.Add(1)
			default:
				sent <- fmt.Errorf("message %d: %w", k, err)
				return
			}
		}
		sent <- nil
	}()
	// Flow control and the small queue stop the sender well before the
	// end: wait until it felt that, then read everything.
	require.Eventually(t, func() bool { return timeouts.Load() > 0 }, 30*time.Second, 10*time.Millisecond)
	for k, r := range recvN(t, b, total, 60*time.Second) {
		want := bulkPayload(0, k, sizes[k%len(sizes)])
		require.True(t, bytes.Equal(want, r.msg), "message %d: %d bytes, want %d", k, len(r.msg), len(want))
	}
	require.NoError(t, <-sent)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, _, err := b.ReceiveContext(ctx, make([]byte, 2<<20))
	require.ErrorIs(t, err, context.DeadlineExceeded, "no message arrived twice")
}
