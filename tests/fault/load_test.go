package fault

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aranya-quic/aranya-quic/core"
)

// 32 peers send at once into one endpoint whose application reads slowly
// and whose queue is small. The queue never exceeds its limits, the heap
// stays within the queue limit plus a fixed per-connection overhead
// (QUIC flow-control windows), senders feel backpressure (sends with a
// short timeout return ErrTimeout), and every accepted message arrives
// exactly once, in order. A send that timed out left nothing behind, so
// retrying it duplicates nothing.
func TestLoadSlowReader(t *testing.T) {
	const (
		peers    = 32
		each     = 200
		size     = 4096
		maxBytes = 64 << 10
		maxMsgs  = 32
	)
	rc := config(t, "sink")
	rc.MaxMessageSize = 16 << 10
	rc.MaxQueueBytes = maxBytes
	rc.MaxQueueMessages = maxMsgs
	sink := endpoint(t, rc)

	senders := make([]*core.Endpoint, peers)
	for i := range senders {
		c := config(t, fmt.Sprintf("load%02d", i))
		c.SendTimeout = 100 * time.Millisecond
		c.SendBufferBytes = 8 << 10
		senders[i] = endpoint(t, c)
	}
	base := heapInUse()

	var timeouts atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, s := range senders {
		label := fmt.Sprintf("L%02d", i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for k := 0; k < each; {
				err := s.Send(context.Background(), sink.LocalAddr(), team(2), label, payload(label, k, size))
				switch {
				case err == nil:
					k++
				case errors.Is(err, core.ErrTimeout):
					timeouts.Add(1) // backpressure: retry the same message
				default:
					t.Errorf("send %s %d: %v", label, k, err)
					return
				}
			}
		}()
	}

	// Watch the queue and the heap while the load runs.
	stop := make(chan struct{})
	var peakHeap, peakQMsgs, peakQBytes uint64
	var watch sync.WaitGroup
	watch.Add(1)
	go func() {
		defer watch.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			st := sink.Stats()
			peakQMsgs = max(peakQMsgs, st.QueueMessages)
			peakQBytes = max(peakQBytes, st.QueueBytes)
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			peakHeap = max(peakHeap, ms.HeapInuse)
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()

	close(start)
	check := newOrderCheck()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	buf := make([]byte, 16<<10)
	for n := 0; n < peers*each; n++ {
		ch, m, err := sink.ReceiveContext(ctx, buf)
		require.NoError(t, err, "after %d of %d", n, peers*each)
		check.add(t, received{ch, buf[:m]}, size)
		st := sink.Stats()
		require.LessOrEqual(t, st.QueueMessages, uint64(maxMsgs))
		require.LessOrEqual(t, st.QueueBytes, uint64(maxBytes))
		if n%4 == 0 {
			time.Sleep(200 * time.Microsecond) // a slow application
		}
	}
	wg.Wait()
	close(stop)
	watch.Wait()
	requireQuiet(t, sink, 200*time.Millisecond)
	for i := range senders {
		require.Equal(t, each, check.next[fmt.Sprintf("L%02d", i)])
	}
	t.Logf("timeouts=%d peak queue %d msgs / %d bytes, heap %d KiB base, %d KiB peak",
		timeouts.Load(), peakQMsgs, peakQBytes, base>>10, peakHeap>>10)
	require.LessOrEqual(t, peakQMsgs, uint64(maxMsgs))
	require.LessOrEqual(t, peakQBytes, uint64(maxBytes))
	require.Greater(t, timeouts.Load(), int64(0), "senders felt backpressure")
	// Queue limit plus a fixed overhead: per connection at most the QUIC
	// receive windows (a few MiB), far below what 32 x 800 KiB unbounded
	// would take, plus the runtime's slack.
	require.Less(t, peakHeap, base+uint64(maxBytes)+peers*(2<<20)+64<<20, "heap bounded")
	require.Equal(t, uint64(peers*each), sink.Stats().MessagesReceived)
}
