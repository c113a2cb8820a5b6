package fault

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aranya-quic/aranya-quic/core"
)

// streamLimitSetup: bob allows alice 2 streams per connection; alice
// uses more channels than that. Channels are not limited, streams are, so
// idle channels give their streams back and reopen them later.
func streamLimitSetup(t *testing.T) (a, b *core.Endpoint) {
	cb := config(t, "bob")
	cb.MaxChannelsPerPeer = 2
	return endpoint(t, config(t, "alice")), endpoint(t, cb)
}

// checkStreamLimitRun: every channel's messages arrived once and in order
// (though they spanned several streams), over one connection.
func checkStreamLimitRun(t *testing.T, a, b *core.Endpoint, got []received, channels, each, size int) {
	t.Helper()
	check := newOrderCheck()
	for _, r := range got {
		check.add(t, r, size)
	}
	for c := 0; c < channels; c++ {
		require.Equal(t, each, check.next[fmt.Sprintf("c%d", c)])
	}
	requireQuiet(t, b, 200*time.Millisecond)
	require.Equal(t, uint64(1), a.Stats().Dials, "a stream limit is no reason for a new connection")
	require.Equal(t, uint64(1), b.Stats().Accepts)
	require.Equal(t, uint64(0), b.Stats().StreamsReset)
}

// Round-robin over 6 channels from one goroutine with 2 streams allowed:
// every send needs a stream another channel holds.
func TestChannelsBeyondPeerStreamLimit(t *testing.T) {
	a, b := streamLimitSetup(t)
	const channels, each, size = 6, 40, 64
	for i := 0; i < each; i++ {
		for c := 0; c < channels; c++ {
			label := fmt.Sprintf("c%d", c)
			require.NoError(t, a.Send(context.Background(), b.LocalAddr(), team(1), label, payload(label, i, size)))
		}
	}
	checkStreamLimitRun(t, a, b, recvN(t, b, channels*each, 30*time.Second), channels, each, size)
}

// The same with all 6 channels sending at once: a channel waiting for
// stream credit must get a stream once others go idle, not time out.
func TestChannelsBeyondPeerStreamLimitConcurrent(t *testing.T) {

	a, b := streamLimitSetup(t)
	const channels, each, size = 6, 30, 64
	var wg sync.WaitGroup
	for c := 0; c < channels; c++ {
		label := fmt.Sprintf("c%d", c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if err := a.Send(context.Background(), b.LocalAddr(), team(1), label, payload(label, i, size)); err != nil {
					t.Errorf("send %s %d: %v", label, i, err)
					return
				}
			}
		}()
	}
	got := recvN(t, b, channels*each, 30*time.Second)
	wg.Wait()
	checkStreamLimitRun(t, a, b, got, channels, each, size)
}
