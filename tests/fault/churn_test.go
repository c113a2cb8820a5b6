package fault

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aranya-quic/aranya-quic/core"
)

// One endpoint talks round-robin to 100 peers with room for 32
// connections: every send past the first 32 evicts the least recently used
// connection, which drains in the background. Every message arrives exactly
// once, in order per peer, with the right content.
func TestEvictionChurn(t *testing.T) {
	const peers, rounds, size = 100, 5, 300
	cfg := config(t, "hub")
	cfg.MaxConnections = 32
	hub := endpoint(t, cfg)

	eps := make([]*core.Endpoint, peers)
	addrs := make([]netip.AddrPort, peers)
	for i := range eps {
		eps[i] = endpoint(t, config(t, fmt.Sprintf("peer%03d", i)))
		addrs[i] = eps[i].LocalAddr()
	}

	// Each peer collects what it gets.
	var wg sync.WaitGroup
	got := make([][]received, peers)
	for i, e := range eps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			buf := make([]byte, 4096)
			for len(got[i]) < rounds {
				ch, n, err := e.ReceiveContext(ctx, buf)
				if err != nil {
					t.Errorf("peer %d: after %d messages: %v", i, len(got[i]), err)
					return
				}
				got[i] = append(got[i], received{ch, append([]byte(nil), buf[:n]...)})
			}
		}()
	}

	// Four senders share the hub, each going round-robin over its own
	// quarter of the peers, so evictions race with sends and dials.
	const senders = 4
	var swg sync.WaitGroup
	for g := 0; g < senders; g++ {
		swg.Add(1)
		go func() {
			defer swg.Done()
			ctx := context.Background()
			for r := 0; r < rounds; r++ {
				for i := g; i < peers; i += senders {
					label := fmt.Sprintf("p%03d", i)
					if err := hub.Send(ctx, addrs[i], team(6), label, payload(label, r, size)); err != nil {
						t.Errorf("round %d peer %d: %v", r, i, err)
						return
					}
				}
			}
		}()
	}
	swg.Wait()
	wg.Wait()
	for i := range eps {
		check := newOrderCheck()
		for _, m := range got[i] {
			require.Equal(t, hub.LocalAddr(), m.ch.Addr)
			check.add(t, m, size)
		}
		require.Equal(t, rounds, check.next[fmt.Sprintf("p%03d", i)], "peer %d", i)
	}
	// Nothing more (no duplicate) shows up once the drains are over.
	time.Sleep(300 * time.Millisecond)
	buf := make([]byte, 4096)
	for i, e := range eps {
		_, _, err := e.Receive(buf)
		require.ErrorIs(t, err, core.ErrWouldBlock, "peer %d got an extra message", i)
	}
	st := hub.Stats()
	t.Logf("hub: dials=%d evictions=%d open=%d lost=%d", st.Dials, st.Evictions, st.OpenConnections, st.ConnectionsLost)
	require.LessOrEqual(t, st.OpenConnections, uint64(32))
	require.GreaterOrEqual(t, st.Evictions, uint64(peers*rounds-32), "round-robin over 100 peers evicts on nearly every send")
	require.Equal(t, uint64(peers*rounds), st.MessagesSent)
	var received uint64
	for _, e := range eps {
		received += e.Stats().MessagesReceived
	}
	require.Equal(t, uint64(peers*rounds), received)
	require.Equal(t, uint64(0), st.ConnectionsLost, "every eviction drained gracefully")
}
