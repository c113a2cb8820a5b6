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

// The receiving side closes the connection (GOAWAY) while the sender has
// messages in flight on several channels: the sender finishes its streams
// on the old connection and carries on over a new one; everything arrives
// once, in order.
func TestPeerClosesConnectionInFlight(t *testing.T) {
	p := proxy(t, 23, netsim.Link{Delay: 10 * time.Millisecond, Jitter: 2 * time.Millisecond})
	a, b := endpoint(t, config(t, "alice")), endpoint(t, config(t, "bob"))
	pa := p.MustAdd(a.LocalAddr())
	pb := p.MustAdd(b.LocalAddr())

	// Two phases of sends; bob closes the connection during each, after
	// receiving a quarter of the phase, so the rest is still in flight.
	const channels, each, size, phases = 4, 300, 1024, 2
	next := make([]chan struct{}, phases)
	for i := range next {
		next[i] = make(chan struct{})
	}
	var wg sync.WaitGroup
	for c := 0; c < channels; c++ {
		label := fmt.Sprintf("pc%d", c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ph := 0; ph < phases; ph++ {
				<-next[ph]
				for i := ph * each; i < (ph+1)*each; i++ {
					if err := a.Send(context.Background(), pb, team(7), label, payload(label, i, size)); err != nil {
						t.Errorf("send %s %d: %v", label, i, err)
						return
					}
				}
			}
		}()
	}
	check := newOrderCheck()
	for ph := 0; ph < phases; ph++ {
		close(next[ph])
		for n := 0; n < channels*each; n++ {
			r := recvN(t, b, 1, 60*time.Second)[0]
			require.Equal(t, pa, r.ch.Addr)
			check.add(t, r, size)
			if n == channels*each/4 {
				require.NoError(t, b.CloseConnection(pa))
			}
		}
	}
	wg.Wait()
	for c := 0; c < channels; c++ {
		require.Equal(t, phases*each, check.next[fmt.Sprintf("pc%d", c)])
	}
	requireQuiet(t, b, 300*time.Millisecond)
	st := a.Stats()
	t.Logf("alice: dials=%d lost=%d; bob: accepts=%d dials=%d", st.Dials, st.ConnectionsLost, b.Stats().Accepts, b.Stats().Dials)
	require.Equal(t, uint64(0), st.ConnectionsLost)
	require.Equal(t, uint64(0), b.Stats().ConnectionsLost)
	require.Equal(t, uint64(phases), st.Dials, "the second phase needed a new connection")
}
