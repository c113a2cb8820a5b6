package fault

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aranya-quic/aranya-quic/core"
	"github.com/aranya-quic/aranya-quic/tests/netsim"
)

// CloseConnection while several channels have messages in flight over a
// slow link: everything accepted before (and after, on the new connection)
// arrives, in order, once.
func TestCloseConnectionInFlight(t *testing.T) {
	p := proxy(t, 21, netsim.Link{Delay: 15 * time.Millisecond, Jitter: 2 * time.Millisecond})
	a, b := endpoint(t, config(t, "alice")), endpoint(t, config(t, "bob"))
	p.MustAdd(a.LocalAddr())
	pb := p.MustAdd(b.LocalAddr())

	const channels, each, size = 4, 600, 2048
	var sent atomic.Int64
	var wg sync.WaitGroup
	for c := 0; c < channels; c++ {
		label := fmt.Sprintf("cc%d", c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if err := a.Send(context.Background(), pb, team(7), label, payload(label, i, size)); err != nil {
					t.Errorf("send %s %d: %v", label, i, err)
					return
				}
				sent.Add(1)
			}
		}()
	}
	// Close the connection twice while the transfer runs.
	for _, at := range []int64{channels * each / 4, channels * each / 2} {
		for sent.Load() < at {
			time.Sleep(time.Millisecond)
		}
		require.NoError(t, a.CloseConnection(pb))
	}
	got := recvN(t, b, channels*each, 60*time.Second)
	wg.Wait()
	check := newOrderCheck()
	for _, r := range got {
		check.add(t, r, size)
	}
	requireQuiet(t, b, 300*time.Millisecond)
	st := a.Stats()
	t.Logf("alice: dials=%d lost=%d", st.Dials, st.ConnectionsLost)
	require.GreaterOrEqual(t, st.Dials, uint64(3), "each close led to a new connection")
	require.Equal(t, uint64(0), st.ConnectionsLost)
}

// Endpoint.Close while senders on several channels are mid-transfer over
// a slow link: every message whose Send returned nil arrives, in order,
// and every Send after the close fails with ErrClosed.
func TestEndpointCloseInFlight(t *testing.T) {
	p := proxy(t, 22, netsim.Link{Delay: 15 * time.Millisecond, Jitter: 2 * time.Millisecond})
	ca := config(t, "alice")
	ca.DrainTimeout = 20 * time.Second
	a, b := endpoint(t, ca), endpoint(t, config(t, "bob"))
	p.MustAdd(a.LocalAddr())
	pb := p.MustAdd(b.LocalAddr())

	const channels, size = 4, 4096
	accepted := make([]int, channels)
	var total atomic.Int64
	var wg sync.WaitGroup
	for c := 0; c < channels; c++ {
		label := fmt.Sprintf("ec%d", c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				err := a.Send(context.Background(), pb, team(8), label, payload(label, i, size))
				if err != nil {
					if !errors.Is(err, core.ErrClosed) {
						t.Errorf("send %s %d: %v", label, i, err)
					}
					return
				}
				accepted[c] = i + 1
				total.Add(1)
			}
		}()
	}
	for total.Load() < 400 {
		time.Sleep(time.Millisecond)
	}
	require.NoError(t, a.Close())
	wg.Wait()
	sum := 0
	for _, n := range accepted {
		sum += n
	}
	t.Logf("accepted before close: %v", accepted)
	got := recvN(t, b, sum, 30*time.Second)
	check := newOrderCheck()
	for _, r := range got {
		check.add(t, r, size)
	}
	for c, n := range accepted {
		require.Equal(t, n, check.next[fmt.Sprintf("ec%d", c)])
	}
	requireQuiet(t, b, 300*time.Millisecond)
	err := a.Send(context.Background(), pb, team(8), "late", []byte("x"))
	require.ErrorIs(t, err, core.ErrClosed)
}
