package fault

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aranya-quic/aranya-quic/core"
	"github.com/aranya-quic/aranya-quic/tests/netsim"
)

// A partition shorter than the idle timeout: sends queue (or block), and
// once it heals everything arrives, in order, once.
func TestShortPartition(t *testing.T) {
	p := proxy(t, 11, netsim.Link{Delay: 2 * time.Millisecond})
	ca, cb := config(t, "alice"), config(t, "bob")
	ca.IdleTimeout, cb.IdleTimeout = 10*time.Second, 10*time.Second
	ca.SendTimeout = 10 * time.Second
	a, b := endpoint(t, ca), endpoint(t, cb)
	pa := p.MustAdd(a.LocalAddr())
	pb := p.MustAdd(b.LocalAddr())

	const n, size = 300, 200
	errs := make(chan error, 1)
	go func() {
		ctx := context.Background()
		for i := 0; i < n; i++ {
			if i == 50 {
				p.PartitionFor(2 * time.Second)
			}
			if err := a.Send(ctx, pb, team(2), "short", payload("short", i, size)); err != nil {
				errs <- err
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
		errs <- nil
	}()
	got := recvN(t, b, n, 30*time.Second)
	require.NoError(t, <-errs, "no send fails during a short partition")
	check := newOrderCheck()
	for _, r := range got {
		require.Equal(t, pa, r.ch.Addr)
		check.add(t, r, size)
	}
	requireQuiet(t, b, 200*time.Millisecond)
	require.Greater(t, p.Stats().Partitioned, uint64(0), "the partition dropped traffic")
	require.Equal(t, uint64(1), a.Stats().Dials, "the connection survived")
	require.Equal(t, uint64(0), a.Stats().ConnectionsLost)
}

// A partition longer than the idle timeout: the connection is declared
// dead, sends fail with a timeout or connection error instead of hanging,
// and after the heal the next sends reconnect and are delivered.
func TestLongPartition(t *testing.T) {
	p := proxy(t, 12, netsim.Link{Delay: 2 * time.Millisecond})
	ca, cb := config(t, "alice"), config(t, "bob")
	for _, c := range []*core.Config{&ca, &cb} {
		c.IdleTimeout = time.Second
		c.HandshakeTimeout = 2 * time.Second
		c.SendTimeout = 2 * time.Second
		c.DrainTimeout = 2 * time.Second
	}
	// A small send buffer, so that sends into the dead connection fill it
	// and block (then time out) instead of all being absorbed.
	ca.SendBufferBytes = 4096
	a, b := endpoint(t, ca), endpoint(t, cb)
	p.MustAdd(a.LocalAddr())
	pb := p.MustAdd(b.LocalAddr())
	watch := ca.SendTimeout + 5*time.Second
	ctx := context.Background()

	const size = 512
	for i := 0; i < 20; i++ {
		require.NoError(t, a.Send(ctx, pb, team(3), "before", payload("before", i, size)))
	}
	check := newOrderCheck()
	for _, r := range recvN(t, b, 20, 10*time.Second) {
		check.add(t, r, size)
	}

	p.Partition()
	accepted := map[int]bool{}
	var failures []error
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; ; i++ {
		require.True(t, time.Now().Before(deadline), "no send failed and no connection was lost during a long partition")
		err := sendWatch(t, watch, func() error {
			return a.Send(ctx, pb, team(3), "during", payload("during", i, size))
		})
		if err == nil {
			accepted[i] = true
		} else {
			require.True(t, isSendFailure(err), "unexpected error class: %v", err)
			failures = append(failures, err)
		}
		if len(failures) >= 2 && a.Stats().ConnectionsLost >= 1 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("during the partition: %d accepted, %d failed, first failure: %v", len(accepted), len(failures), failures[0])
	require.GreaterOrEqual(t, a.Stats().ConnectionsLost, uint64(1), "the dead connection was detected")

	p.Heal()
	// A dial started during the partition may still be retrying its
	// handshake; allow it to fail, but the sends after it must go through.
	var first int
	for first = 0; ; first++ {
		require.Less(t, first, 5, "sends keep failing after the heal")
		err := sendWatch(t, watch, func() error {
			return a.Send(ctx, pb, team(3), "after", payload("after", 0, size))
		})
		if err == nil {
			break
		}
		require.True(t, isSendFailure(err), "unexpected error class: %v", err)
		t.Logf("send after heal failed (%d): %v", first, err)
	}
	const after = 100
	for i := 1; i < after; i++ {
		require.NoError(t, a.Send(ctx, pb, team(3), "after", payload("after", i, size)))
	}

	// Everything sent after the heal arrives; of the messages accepted
	// during the partition some may be lost (the connection died), but
	// none arrives twice or out of order.
	deadlineRecv := time.Now().Add(20 * time.Second)
	buf := make([]byte, 1<<16)
	lastDuring := -1
	for check.next["after"] < after {
		rctx, cancel := context.WithDeadline(ctx, deadlineRecv)
		ch, n, err := b.ReceiveContext(rctx, buf)
		cancel()
		require.NoError(t, err, "after the heal: %d of %d arrived", check.next["after"], after)
		r := received{ch, append([]byte(nil), buf[:n]...)}
		label, seq := parsePayload(t, r.msg)
		switch label {
		case "during":
			require.True(t, accepted[seq], "message %d was not accepted but arrived", seq)
			require.Greater(t, seq, lastDuring, "during-partition message duplicated or reordered")
			lastDuring = seq
		case "after":
			check.add(t, r, size)
		default:
			t.Fatalf("unexpected message %q", r.msg)
		}
	}
	requireQuiet(t, b, 300*time.Millisecond)
	require.GreaterOrEqual(t, a.Stats().Dials, uint64(2), "the sender re-dialed")
}

// Partition during concurrent sends on several channels, shorter than the
// idle timeout, with loss after the heal: still nothing lost.
func TestPartitionWhileBusy(t *testing.T) {
	p := proxy(t, 13, netsim.Link{Delay: 5 * time.Millisecond, Loss: 0.02})
	a, b := endpoint(t, config(t, "alice")), endpoint(t, config(t, "bob"))
	p.MustAdd(a.LocalAddr())
	pb := p.MustAdd(b.LocalAddr())
	const channels, each, size = 4, 400, 100
	var wg sync.WaitGroup
	for c := 0; c < channels; c++ {
		label := string(rune('p' + c))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if err := a.Send(context.Background(), pb, team(4), label, payload(label, i, size)); err != nil {
					t.Errorf("send %s %d: %v", label, i, err)
					return
				}
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	p.PartitionFor(1500 * time.Millisecond)
	got := recvN(t, b, channels*each, 40*time.Second)
	wg.Wait()
	check := newOrderCheck()
	for _, r := range got {
		check.add(t, r, size)
	}
	requireQuiet(t, b, 200*time.Millisecond)
}
