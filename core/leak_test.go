package core

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A daemon makes and frees endpoints and connections for as long as it
// runs: everything the engine starts for a connection and its streams
// (readers, receipt readers, drains, retirements) ends when the endpoint
// is closed, whichever way the streams ended (read to the end, retired for
// the stream limit, closed with the connection).
func TestNoGoroutinesLeftAfterClose(t *testing.T) {
	before := runtime.NumGoroutine()
	{
		acfg, bcfg := peerConfig(t, "alice"), peerConfig(t, "bob")
		bcfg.MaxChannelsPerPeer = 4 // more channels than streams: retirements
		a, err := NewEndpoint(acfg)
		require.NoError(t, err)
		b, err := NewEndpoint(bcfg)
		require.NoError(t, err)
		ctx := sendCtx(t)
		// Round robin over more channels than streams: each open past the
		// limit waits for a retirement (slow, by design: credit is polled).
		const channels, each = 6, 4
		for i := 0; i < each; i++ {
			for c := 0; c < channels; c++ {
				require.NoError(t, a.Send(ctx, b.LocalAddr(), team(1), fmt.Sprintf("c%d", c), []byte("x")))
				require.NoError(t, b.Send(ctx, a.LocalAddr(), team(1), fmt.Sprintf("c%d", c), []byte("y")))
			}
		}
		recvN(t, b, channels*each, 20*time.Second)
		recvN(t, a, channels*each, 20*time.Second)
		require.NoError(t, a.CloseConnection(b.LocalAddr()))
		require.NoError(t, a.Send(ctx, b.LocalAddr(), team(1), "after", []byte("z")))
		recvN(t, b, 1, 10*time.Second)
		require.NoError(t, a.Close())
		require.NoError(t, b.Close())
	}
	now := runtime.NumGoroutine()
	for end := time.Now().Add(10 * time.Second); now > before+2 && time.Now().Before(end); now = runtime.NumGoroutine() {
		time.Sleep(20 * time.Millisecond) // the runtime's own goroutines may come and go
	}
	if now > before+2 {
		buf := make([]byte, 1<<20)
		t.Logf("%s", buf[:runtime.Stack(buf, true)])
	}
	require.LessOrEqual(t, now, before+2, "goroutines: %d before, %d after", before, now)
}
