package fault

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aranya-quic/aranya-quic/tests/netsim"
)

// 5% loss each way, 20 ms delay plus jitter, and reordering: 10,000
// messages on 8 channels all arrive, in order per channel, none twice.
// The link also duplicates 1% of datagrams.
func TestLossDelayReorder(t *testing.T) {
	p := proxy(t, 20240501, netsim.Link{
		Loss:    0.05,
		Delay:   20 * time.Millisecond,
		Jitter:  4 * time.Millisecond,
		Reorder: 0.03,
		// Duplicates too: QUIC must discard them.
		Duplicate: 0.01,
	})
	ca, cb := config(t, "alice"), config(t, "bob")
	ca.SendTimeout, cb.SendTimeout = 30*time.Second, 30*time.Second
	a, b := endpoint(t, ca), endpoint(t, cb)
	p.MustAdd(a.LocalAddr())
	pb := p.MustAdd(b.LocalAddr())
	pa := p.MustAdd(a.LocalAddr())

	const channels, perChannel, size = 8, 1250, 48
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for c := 0; c < channels; c++ {
		label := fmt.Sprintf("lossy%d", c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := 0; s < perChannel; s++ {
				if err := a.Send(ctx, pb, team(1), label, payload(label, s, size)); err != nil {
					t.Errorf("send %s %d: %v", label, s, err)
					return
				}
			}
		}()
	}
	got := recvN(t, b, channels*perChannel, 60*time.Second)
	wg.Wait()
	check := newOrderCheck()
	for _, r := range got {
		require.Equal(t, pa, r.ch.Addr, "the sender is known by its proxy address")
		check.add(t, r, size)
	}
	for c := 0; c < channels; c++ {
		require.Equal(t, perChannel, check.next[fmt.Sprintf("lossy%d", c)])
	}
	requireQuiet(t, b, 300*time.Millisecond)
	st := p.Stats()
	t.Logf("proxy: %+v", st)
	require.Greater(t, st.Lost, uint64(0), "the link did lose packets")
	require.Equal(t, uint64(1), a.Stats().Dials, "one connection carried it all")
	require.Equal(t, uint64(channels*perChannel), b.Stats().MessagesReceived)
}
