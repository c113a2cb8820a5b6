package fault

// Attack tests: hostile interleavings of send, close, eviction, free and
// hostile raw peers against the delivery promise (order, accounting).

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/stretchr/testify/require"

	"github.com/aranya-quic/aranya-quic/core"
	"github.com/aranya-quic/aranya-quic/core/wire"
	"github.com/aranya-quic/aranya-quic/tests/netsim"
)

// tlogWriter sends an endpoint's log lines to the test log.
type tlogWriter struct {
	t    testing.TB
	name string
}

func (w tlogWriter) Write(b []byte) (int, error) {
	w.t.Logf("%s log: %s", w.name, b)
	return len(b), nil
}

// unconfirmedOf is the count of an *UnconfirmedError, 0 for nil; any
// other error fails the test.
func unconfirmedOf(t testing.TB, what string, err error) uint64 {
	t.Helper()
	if err == nil {
		return 0
	}
	var ue *core.UnconfirmedError
	require.ErrorAsf(t, err, &ue, "%s: unexpected error %v", what, err)
	return ue.Messages
}

// Attack 3: the receiver reads a frame, finds its queue full and waits in
// push (it has also buffered further frames in its bufio reader). The
// sender's CloseConnection times out (200 ms), abandons the stream and the
// channel moves on to a new connection. The old stream's reader still
// pushes what it read when room appears, competing with the new stream's
// reader: the channel must still be strictly increasing at the receiver.
func TestAttackReorderAfterDrainTimeout(t *testing.T) {
	ca := config(t, "alice")
	ca.DrainTimeout = 200 * time.Millisecond
	cb := config(t, "bob")
	cb.MaxQueueMessages = 1
	cb.MaxMessageSize = 64 << 10
	cb.MaxQueueBytes = 64 << 10
	a, b := endpoint(t, ca), endpoint(t, cb)

	const total, size = 200000, 48
	reader := startPacedReader(b, 500*time.Microsecond, 500*time.Millisecond)
	stopSend := make(chan struct{})
	s := startOrderedSender(sendSpec{from: a, to: b.LocalAddr(), team: 9, label: "x", total: total, size: size, stop: stopSend})
	var closeErrs []error
	var reported uint64
	deadline := time.Now().Add(4 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(150 * time.Millisecond)
		err := a.CloseConnection(b.LocalAddr())
		closeErrs = append(closeErrs, err)
		reported += unconfirmedOf(t, "CloseConnection", err)
	}
	close(stopSend)
	<-s.done
	err := a.CloseConnection(b.LocalAddr())
	reported += unconfirmedOf(t, "final CloseConnection", err)
	got := reader.finish()

	rep := checkSeq(got, "x", size, total, s.isAccepted)
	acceptedN := s.acceptedCount()
	st := a.Stats()
	nUnconf := 0
	for _, e := range closeErrs {
		if e != nil {
			nUnconf++
		}
	}
	t.Logf("closes=%d (unconfirmed errors %d, reported %d); accepted=%d send failures=%d first=%v",
		len(closeErrs), nUnconf, reported, acceptedN, s.failed.Load(), s.firstErr.Load())
	t.Logf("channel x: %v", rep)
	t.Logf("alice: dials=%d unconfirmed(stats)=%d lost=%d", st.Dials, st.MessagesUnconfirmed, st.ConnectionsLost)
	require.Zerof(t, rep.outOfOrder, "per-channel order broken: %v", rep)
	require.Zerof(t, rep.duplicates, "duplicates: %v", rep)
	require.LessOrEqualf(t, uint64(len(rep.missing)), st.MessagesUnconfirmed,
		"%d accepted messages never arrived, stats report %d unconfirmed", len(rep.missing), st.MessagesUnconfirmed)
}

// Attack 5a/engine: our own abandon (drain timeout) resets both
// directions of a channel stream. The receiver must release the stream
// (its slot in the peer's stream limit) once it has seen the reset, or a
// connection with a small MaxChannelsPerPeer wedges for good.
//
// A raw peer opens MaxChannelsPerPeer streams, writes a header and a
// message on each, and resets both directions (what sendStream.abandon
// does). A further stream must then open.
func TestAttackResetStreamsReleaseSlots(t *testing.T) {
	cfg := config(t, "bob")
	cfg.MaxChannelsPerPeer = 2
	e := endpoint(t, cfg)
	p := mustDialRaw(t, e.LocalAddr())
	for i := 0; i < 2; i++ {
		label := fmt.Sprintf("r%d", i)
		s := p.open(append(header(t, label), frame(payload(label, 0, 32))...))
		time.Sleep(50 * time.Millisecond) // the endpoint read the header and the message
		s.CancelWrite(quic.StreamErrorCode(wire.StreamCodeShuttingDown))
		s.CancelRead(quic.StreamErrorCode(wire.StreamCodeShuttingDown))
	}
	recvN(t, e, 2, 5*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	s, err := p.conn.OpenStreamSync(ctx)
	if err == nil {
		s.CancelWrite(0)
	}
	t.Logf("stats: %+v", e.Stats())
	require.NoError(t, err, "after 2 streams reset by the sender (both directions), the endpoint never granted a new stream: the slots leak")
}

// The same leak end to end: alice retires a busy channel's stream because
// bob allows only one stream (stream-limit path), the retire times out on
// bob's slow reader and alice abandons the stream. The connection is
// still up and bob is reading: the other channel's send must get through.
func TestAttackStreamLimitAbandonWedgesConnection(t *testing.T) {
	ca := config(t, "alice")
	ca.DrainTimeout = 200 * time.Millisecond
	ca.SendTimeout = 5 * time.Second
	cb := config(t, "bob")
	cb.MaxChannelsPerPeer = 1
	cb.MaxQueueMessages = 2
	cb.MaxMessageSize = 64 << 10
	cb.MaxQueueBytes = 64 << 10
	a, b := endpoint(t, ca), endpoint(t, cb)
	reader := startPacedReader(b, 5*time.Millisecond, 500*time.Millisecond)

	// Fill channel x: far more than bob reads in 200 ms. The messages
	// are larger than bob's read buffer, so when bob's reader, blocked in
	// its queue push, sees the reset it has nothing buffered left and
	// returns without writing on its direction of the stream again.
	for i := 0; i < 40; i++ {
		require.NoError(t, a.Send(context.Background(), b.LocalAddr(), team(9), "x", payload("x", i, 16<<10)))
	}
	start := time.Now()
	errY := a.Send(context.Background(), b.LocalAddr(), team(9), "y", payload("y", 0, 16))
	tookY := time.Since(start)
	time.Sleep(500 * time.Millisecond)
	start = time.Now()
	errY2 := a.Send(context.Background(), b.LocalAddr(), team(9), "y", payload("y", 1, 16))
	tookY2 := time.Since(start)
	got := reader.finish()
	st, sb := a.Stats(), b.Stats()
	t.Logf("send y0: %v after %v; send y1: %v after %v", errY, tookY.Round(time.Millisecond), errY2, tookY2.Round(time.Millisecond))
	t.Logf("bob got %d; alice: dials=%d unconfirmed=%d openStreams=%d lost=%d; bob: openStreams=%d", len(got), st.Dials, st.MessagesUnconfirmed, st.OpenStreams, st.ConnectionsLost, sb.OpenStreams)
	require.NoError(t, errY, "channel y could not get a stream on a live connection")
	require.NoError(t, errY2)
}

// Attack 1b: a channel stream retired by the stream-limit path is not in
// the connection's stream map while it flushes; CloseConnection (and
// Endpoint.Close) must still wait for it, or at least report its
// unconfirmed messages, before returning nil.
func TestAttackCloseWhileStreamLimitRetire(t *testing.T) {
	for _, free := range []bool{false, true} {
		name := "CloseConnection"
		if free {
			name = "Close"
		}
		t.Run(name, func(t *testing.T) {
			ca := config(t, "alice")
			ca.DrainTimeout = 5 * time.Second
			cb := config(t, "bob")
			cb.MaxChannelsPerPeer = 1
			cb.MaxQueueMessages = 2
			cb.MaxMessageSize = 64 << 10
			cb.MaxQueueBytes = 64 << 10
			a, b := endpoint(t, ca), endpoint(t, cb)
			reader := startPacedReader(b, 10*time.Millisecond, time.Second)

			const nx, size = 60, 4096
			for i := 0; i < nx; i++ {
				require.NoError(t, a.Send(context.Background(), b.LocalAddr(), team(9), "x", payload("x", i, size)))
			}
			// y needs x's stream: x is retired (flushing to slow bob).
			ydone := make(chan error, 1)
			go func() {
				ydone <- a.Send(context.Background(), b.LocalAddr(), team(9), "y", payload("y", 0, size))
			}()
			time.Sleep(100 * time.Millisecond)
			var closeErr error
			start := time.Now()
			if free {
				closeErr = a.Close()
			} else {
				closeErr = a.CloseConnection(b.LocalAddr())
			}
			took := time.Since(start)
			errY := <-ydone
			got := reader.finish()
			rep := checkSeq(got, "x", size, nx, func(int) bool { return true })
			time.Sleep(200 * time.Millisecond)
			st := a.Stats()
			t.Logf("%s took %v: %v; send y: %v", name, took.Round(time.Millisecond), closeErr, errY)
			t.Logf("channel x: %v", rep)
			t.Logf("alice: unconfirmed(stats)=%d lost=%d", st.MessagesUnconfirmed, st.ConnectionsLost)
			require.Zero(t, rep.outOfOrder+rep.duplicates, "order: %v", rep)
			if closeErr == nil {
				require.Emptyf(t, rep.missing, "%s returned nil, but %d accepted messages of x never arrived (stats say %d unconfirmed)", name, len(rep.missing), st.MessagesUnconfirmed)
			} else {
				require.GreaterOrEqual(t, unconfirmedOf(t, name, closeErr), uint64(len(rep.missing)))
			}
			// Bob reads all of x in well under a second; the drain timeout
			// is 5 s. A graceful close must have let x's retiring stream
			// finish rather than cut it off.
			require.Emptyf(t, rep.missing, "%s gave up on x's retiring stream after %v (drain timeout 5 s) and dropped %d messages bob would have read",
				name, took.Round(time.Millisecond), len(rep.missing))
		})
	}
}

// The stream-slot leak end to end, without a hostile peer: bob allows one
// stream; alice's channel x has delivered its message and bob's reader
// idles on the stream. A short partition makes alice's retire of x (to
// open y) time out, so alice resets x both ways. After the partition
// heals bob sees the resets but never releases the stream, so y (and
// every later channel) can never get a stream on this live connection.
func TestAttackPartitionAbandonWedgesConnection(t *testing.T) {
	p := proxy(t, 31, netsim.Link{Delay: time.Millisecond})
	ca := config(t, "alice")
	ca.DrainTimeout = 200 * time.Millisecond
	ca.SendTimeout = 3 * time.Second
	cb := config(t, "bob")
	cb.MaxChannelsPerPeer = 1
	a, b := endpoint(t, ca), endpoint(t, cb)
	p.MustAdd(a.LocalAddr())
	pb := p.MustAdd(b.LocalAddr())

	require.NoError(t, a.Send(context.Background(), pb, team(9), "x", payload("x", 0, 16)))
	recvN(t, b, 1, 5*time.Second)
	p.PartitionFor(500 * time.Millisecond)
	start := time.Now()
	errY := a.Send(context.Background(), pb, team(9), "y", payload("y", 0, 16))
	tookY := time.Since(start)
	// Well after the heal, on the same live connection.
	start = time.Now()
	errZ := a.Send(context.Background(), pb, team(9), "z", payload("z", 0, 16))
	tookZ := time.Since(start)
	got := collect(b, 2, time.Second, 2*time.Second)
	st, sb := a.Stats(), b.Stats()
	t.Logf("send y: %v after %v; send z: %v after %v; bob got %d more", errY, tookY.Round(time.Millisecond), errZ, tookZ.Round(time.Millisecond), len(got))
	t.Logf("alice: dials=%d open=%d openStreams=%d unconfirmed=%d lost=%d; bob: openStreams=%d accepts=%d", st.Dials, st.OpenConnections, st.OpenStreams, st.MessagesUnconfirmed, st.ConnectionsLost, sb.OpenStreams, sb.Accepts)
	require.NoError(t, errY, "y after a 500 ms partition")
	require.NoError(t, errZ, "z after the partition healed, on a live connection")
}

// Attack 3 over an imperfect link: the CONNECTION_CLOSE that ends a
// timed-out drain can be held back (reordered or lost), so bob's reader of
// the abandoned stream, blocked in its queue push with a message it has
// read, is still alive when the channel's next stream (on the new
// connection) delivers. Order must still hold.
func TestAttackReorderAfterDrainTimeoutLossyLink(t *testing.T) {
	for _, tc := range []struct {
		name string
		link netsim.Link
	}{
		{"reorder", netsim.Link{Delay: time.Millisecond, Reorder: 0.1, ReorderDelay: 150 * time.Millisecond}},
		// The drain times out 200 ms after the close starts; a partition
		// from 150 ms to 300 ms swallows the CONNECTION_CLOSE (and the
		// stream resets), so bob's old connection lives on and its reader
		// keeps queueing the abandoned stream's data while the channel's
		// next stream delivers.
		{"lostclose", netsim.Link{Delay: time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := proxy(t, 41, tc.link)
			ca := config(t, "alice")
			ca.DrainTimeout = 200 * time.Millisecond
			ca.SendTimeout = 2 * time.Second
			cb := config(t, "bob")
			cb.DrainTimeout = time.Second
			cb.MaxQueueMessages = 1
			cb.MaxMessageSize = 64 << 10
			cb.MaxQueueBytes = 64 << 10
			a, b := endpoint(t, ca), endpoint(t, cb)
			p.MustAdd(a.LocalAddr())
			pb := p.MustAdd(b.LocalAddr())

			const total, size = 100000, 6000
			reader := startPacedReader(b, 2*time.Millisecond, 500*time.Millisecond)
			stopSend := make(chan struct{})
			s := startOrderedSender(sendSpec{from: a, to: pb, team: 9, label: "x", total: total, size: size, stop: stopSend})
			var reported uint64
			closes := 0
			deadline := time.Now().Add(4 * time.Second)
			if tc.name == "lostclose" {
				deadline = time.Now().Add(3 * time.Second)
			}
			for time.Now().Before(deadline) {
				time.Sleep(100 * time.Millisecond)
				if tc.name == "lostclose" {
					done := make(chan error, 1)
					go func() { done <- a.CloseConnection(pb) }()
					time.Sleep(150 * time.Millisecond)
					p.PartitionFor(150 * time.Millisecond)
					cerr := <-done
					reported += unconfirmedOf(t, "CloseConnection", cerr)
					time.Sleep(400 * time.Millisecond)
					sa, sb := a.Stats(), b.Stats()
					t.Logf("close: %v; alice sent=%d dials=%d accepts=%d open=%d streams=%d; bob received=%d accepts=%d open=%d queue=%d streams=%d reset=%d lost=%d", cerr, sa.MessagesSent, sa.Dials, sa.Accepts, sa.OpenConnections, sa.OpenStreams, sb.MessagesReceived, sb.Accepts, sb.OpenConnections, sb.QueueMessages, sb.OpenStreams, sb.StreamsReset, sb.ConnectionsLost)
				} else {
					reported += unconfirmedOf(t, "CloseConnection", a.CloseConnection(pb))
				}
				closes++
			}
			close(stopSend)
			t0 := time.Now()
			<-s.done
			t1 := time.Now()
			reported += unconfirmedOf(t, "final CloseConnection", a.CloseConnection(pb))
			t2 := time.Now()
			got := reader.finish()
			t.Logf("sender stopped after %v, final close %v, reader %v", t1.Sub(t0).Round(time.Millisecond), t2.Sub(t1).Round(time.Millisecond), time.Since(t2).Round(time.Millisecond))
			rep := checkSeq(got, "x", size, total, s.isAccepted)
			st := a.Stats()
			t.Logf("closes=%d reported=%d send failures=%d first=%v", closes, reported, s.failed.Load(), s.firstErr.Load())
			t.Logf("channel x: %v", rep)
			t.Logf("alice: dials=%d unconfirmed(stats)=%d lost=%d", st.Dials, st.MessagesUnconfirmed, st.ConnectionsLost)
			require.Zerof(t, rep.outOfOrder, "per-channel order broken: %v", rep)
			require.Zerof(t, rep.duplicates, "duplicates: %v", rep)
			require.LessOrEqual(t, uint64(len(rep.missing)), st.MessagesUnconfirmed)
		})
	}
}

// Attack 6: Stats().OpenStreams is a gauge: after a mixed exchange (both
// directions, several channels, stream-limit retirements, closes) and
// CloseConnection on both sides, it is back to 0 on both endpoints.
func TestAttackOpenStreamsGaugeReturnsToZero(t *testing.T) {
	ca, cb := config(t, "alice"), config(t, "bob")
	ca.MaxChannelsPerPeer = 2
	cb.MaxChannelsPerPeer = 2
	ca.Logger = slog.New(slog.NewTextHandler(tlogWriter{t, "alice"}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cb.Logger = slog.New(slog.NewTextHandler(tlogWriter{t, "bob"}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	a, b := endpoint(t, ca), endpoint(t, cb)
	const channels, each = 5, 30
	var wg sync.WaitGroup
	for _, d := range []struct{ from, to *core.Endpoint }{{a, b}, {b, a}} {
		for c := 0; c < channels; c++ {
			label := fmt.Sprintf("g%d", c)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < each; i++ {
					if err := d.from.Send(context.Background(), d.to.LocalAddr(), team(2), label, payload(label, i, 64)); err != nil {
						t.Errorf("send %s %d: %v", label, i, err)
						return
					}
				}
			}()
		}
	}
	var ga, gb []received
	var rwg sync.WaitGroup
	rwg.Add(2)
	go func() { defer rwg.Done(); ga = collect(a, channels*each, 3*time.Second, 20*time.Second) }()
	go func() { defer rwg.Done(); gb = collect(b, channels*each, 3*time.Second, 20*time.Second) }()
	wg.Wait()
	rwg.Wait()
	require.NoError(t, a.CloseConnection(b.LocalAddr()))
	require.NoError(t, b.CloseConnection(a.LocalAddr()))
	var sa, sb core.Stats
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		sa, sb = a.Stats(), b.Stats()
		if sa.OpenStreams == 0 && sb.OpenStreams == 0 {
			break
		}
	}
	t.Logf("a got %d, b got %d; alice %+v; bob %+v", len(ga), len(gb), sa, sb)
	require.Len(t, ga, channels*each)
	require.Len(t, gb, channels*each)
	require.Zero(t, sa.OpenStreams, "alice's open-stream gauge after everything closed")
	require.Zero(t, sb.OpenStreams, "bob's open-stream gauge after everything closed")
	require.Zero(t, sa.MessagesUnconfirmed)
	require.Zero(t, sb.MessagesUnconfirmed)
	require.Zero(t, sa.OpenConnections)
	require.Zero(t, sb.OpenConnections)
}

// chaosChannel is one channel of the chaos test.
type chaosChannel struct {
	from, to *core.Endpoint
	s        *orderedSender
}

// Attack 1: many goroutines on several channels in both directions while
// both sides keep closing the connection (without waiting for each other)
// and alice, limited to one connection, keeps evicting bob for carol and
// carol for bob. Order must hold on every channel, nothing may arrive
// twice, and every accepted message that did not arrive must be counted
// in its sender's Stats().MessagesUnconfirmed.
func TestAttackChaosCloseEvictBothSides(t *testing.T) {
	t.Run("fast", func(t *testing.T) { chaosRun(t, false) })
	// Tiny receive queues and paced readers: drains time out, streams are
	// abandoned with messages read but not queued.
	t.Run("slow", func(t *testing.T) { chaosRun(t, true) })
}

func chaosRun(t *testing.T, slow bool) {
	ca, cb, cc := config(t, "alice"), config(t, "bob"), config(t, "carol")
	ca.MaxConnections = 1
	for _, c := range []*core.Config{&ca, &cb, &cc} {
		c.DrainTimeout = 300 * time.Millisecond
		c.SendTimeout = 3 * time.Second
		if slow {
			c.DrainTimeout = 100 * time.Millisecond
			c.MaxQueueMessages = 2
		}
	}
	a, b, c := endpoint(t, ca), endpoint(t, cb), endpoint(t, cc)
	const total, size = 1 << 18, 40
	var chans []*chaosChannel
	stop := make(chan struct{})
	add := func(from, to *core.Endpoint, label string) {
		chans = append(chans, &chaosChannel{from: from, to: to,
			s: startOrderedSender(sendSpec{from: from, to: to.LocalAddr(), team: 5, label: label, total: total, size: size, stop: stop})})
	}
	add(a, b, "ab0")
	add(a, b, "ab1")
	add(a, b, "ab2")
	add(b, a, "ba0")
	add(b, a, "ba1")
	add(a, c, "ac0")
	add(c, a, "ca0")
	got := map[*core.Endpoint]*[]received{a: new([]received), b: new([]received), c: new([]received)}
	var rwg sync.WaitGroup
	for e, out := range got {
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			// Read until the senders stop, then until quiet: a channel
			// starved for a while under eviction churn is not a loss.
			period := time.Duration(0)
			if slow {
				period = 200 * time.Microsecond
			}
			r := startPacedReader(e, period, 1500*time.Millisecond)
			<-stop
			*out = r.finish()
		}()
	}
	closers := []*struct {
		name     string
		from, to *core.Endpoint
		period   time.Duration
		errs     []error
	}{
		{name: "a->b", from: a, to: b, period: 7 * time.Millisecond},
		{name: "b->a", from: b, to: a, period: 11 * time.Millisecond},
		{name: "c->a", from: c, to: a, period: 13 * time.Millisecond},
	}
	var cwg sync.WaitGroup
	for _, cl := range closers {
		cwg.Add(1)
		go func() { defer cwg.Done(); cl.errs = closeLoop(cl.from, cl.to, cl.period, stop) }()
	}
	time.Sleep(3 * time.Second)
	close(stop)
	for _, ch := range chans {
		<-ch.s.done
	}
	cwg.Wait()
	rwg.Wait()

	missing := map[*core.Endpoint]int{}
	bad := false
	for _, ch := range chans {
		rep := checkSeq(*got[ch.to], ch.s.label, size, total, ch.s.isAccepted)
		t.Logf("%s: accepted=%d failed=%d first=%v; %v", ch.s.label, ch.s.acceptedCount(), ch.s.failed.Load(), ch.s.firstErr.Load(), rep)
		missing[ch.from] += len(rep.missing)
		if rep.outOfOrder+rep.duplicates+rep.foreign > 0 {
			bad = true
		}
	}
	for _, cl := range closers {
		n, sum := 0, uint64(0)
		for _, err := range cl.errs {
			if err != nil {
				n++
				sum += unconfirmedOf(t, "CloseConnection "+cl.name, err)
			}
		}
		t.Logf("closes %s: %d, %d with unconfirmed (%d messages)", cl.name, len(cl.errs), n, sum)
	}
	for _, e := range []*core.Endpoint{a, b, c} {
		st := e.Stats()
		t.Logf("%v: dials=%d accepts=%d evictions=%d lost=%d unconfirmed=%d missing=%d openStreams=%d", e.LocalAddr(), st.Dials, st.Accepts, st.Evictions, st.ConnectionsLost, st.MessagesUnconfirmed, missing[e], st.OpenStreams)
	}
	require.False(t, bad, "order, duplicates or corruption on some channel (see log)")
	for _, e := range []*core.Endpoint{a, b, c} {
		require.LessOrEqualf(t, uint64(missing[e]), e.Stats().MessagesUnconfirmed,
			"%v: %d accepted messages never arrived, stats count %d unconfirmed", e.LocalAddr(), missing[e], e.Stats().MessagesUnconfirmed)
	}
}

// dialRawHello is dialRaw with a HELLO payload of the test's choosing; it
// keeps the control stream so the test can say DONE.
func dialRawHello(t testing.TB, target netip.AddrPort, hello []byte) (*rawPeer, *quic.SendStream) {
	t.Helper()
	tr := rawTransport(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := tr.Dial(ctx, net.UDPAddrFromAddrPort(target), rawTLS(issue(t, "raw"), ""), rawQUIC)
	require.NoError(t, err)
	t.Cleanup(func() { conn.CloseWithError(0, "") })
	p := &rawPeer{t: t, tr: tr, conn: conn, addr: tr.Conn.LocalAddr().(*net.UDPAddr).AddrPort()}
	ctrl, err := conn.OpenUniStream()
	require.NoError(t, err)
	_, err = ctrl.Write(wire.AppendControl(nil, wire.ControlHello, hello))
	require.NoError(t, err)
	in, err := conn.AcceptUniStream(ctx)
	require.NoError(t, err)
	_ = in.SetReadDeadline(time.Now().Add(10 * time.Second))
	m, err := wire.ReadControl(bufio.NewReader(in))
	require.NoError(t, err)
	_, p.peerMaxMessage, err = wire.ParseHello(m.Payload)
	require.NoError(t, err)
	return p, ctrl
}

func waitAccepted(t testing.TB, e *core.Endpoint, n uint64) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); e.Stats().Accepts < n; time.Sleep(5 * time.Millisecond) {
		require.True(t, time.Now().Before(deadline), "connection not accepted")
	}
}

func rawInstance() [wire.InstanceIDLen]byte {
	var id [wire.InstanceIDLen]byte
	_, _ = rand.Read(id[:])
	return id
}

// acceptChannel accepts the endpoint's next channel stream on p and reads
// its header and n messages.
func (p *rawPeer) acceptChannel(n int) (*quic.Stream, *bufio.Reader, [][]byte) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := p.conn.AcceptStream(ctx)
	require.NoError(p.t, err)
	_ = s.SetReadDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(s)
	_, err = wire.ReadHeader(r)
	require.NoError(p.t, err)
	var msgs [][]byte
	for i := 0; i < n; i++ {
		m, err := wire.ReadFrame(r, 1<<20)
		require.NoError(p.t, err)
		msgs = append(msgs, m)
	}
	return s, r, msgs
}

// sentToRawPeer connects a raw peer to alice (DrainTimeout 1s) and sends
// it n messages of label on one channel; it returns alice, the peer and
// the peer's control stream.
func sentToRawPeer(t *testing.T, label string, n int) (*core.Endpoint, *rawPeer, *quic.SendStream) {
	t.Helper()
	cfg := config(t, "alice")
	cfg.DrainTimeout = time.Second
	e := endpoint(t, cfg)
	p, ctrl := dialRawHello(t, e.LocalAddr(), wire.AppendHello(nil, rawInstance(), 1<<20))
	waitAccepted(t, e, 1)
	for i := 0; i < n; i++ {
		require.NoError(t, e.Send(context.Background(), p.addr, team(9), label, payload(label, i, 32)))
	}
	return e, p, ctrl
}

// Attack 5: a peer that reads every message but resets its direction of
// the stream (no receipt) must not let CloseConnection return nil.
func TestAttackRawPeerResetsReceiptDirection(t *testing.T) {
	e, p, _ := sentToRawPeer(t, "r", 5)
	s, _, msgs := p.acceptChannel(5)
	require.Len(t, msgs, 5)
	s.CancelWrite(7)
	err := e.CloseConnection(p.addr)
	t.Logf("CloseConnection: %v; stats %+v", err, e.Stats())
	require.ErrorIs(t, err, core.ErrUnconfirmed)
	require.Equal(t, uint64(5), unconfirmedOf(t, "CloseConnection", err))
}

// A peer that confirms more than was sent (and then less) is clamped: the
// accounting neither underflows nor counts negative.
func TestAttackRawPeerOverConfirms(t *testing.T) {
	e, p, ctrl := sentToRawPeer(t, "o", 5)
	s, r, _ := p.acceptChannel(5)
	_, err := s.Write(append(wire.AppendAck(nil, 1<<40), wire.AppendAck(nil, 2)...))
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() {
		_, err := r.ReadByte() // the endpoint's FIN
		if errors.Is(err, io.EOF) {
			err = nil
		}
		s.Close()
		_, _ = ctrl.Write(wire.AppendControl(nil, wire.ControlDone, nil))
		done <- err
	}()
	closeErr := e.CloseConnection(p.addr)
	require.NoError(t, <-done)
	st := e.Stats()
	t.Logf("CloseConnection: %v; unconfirmed=%d", closeErr, st.MessagesUnconfirmed)
	require.Zero(t, st.MessagesUnconfirmed)
	require.NoError(t, closeErr)
}

// HELLO edge values: a limit of 0 (only empty messages), 2^62-1 (our own
// limit applies), trailing bytes after the limit (ignored: later versions
// append fields), a truncated limit (refused).
func TestAttackHelloLimits(t *testing.T) {
	e := endpoint(t, config(t, "alice"))
	// dialRawHello returns once the endpoint's HELLO arrived, which may be
	// before the endpoint has put the connection in its map.
	dial := func(t *testing.T, hello []byte) *rawPeer {
		before := e.Stats().Accepts
		p, _ := dialRawHello(t, e.LocalAddr(), hello)
		waitAccepted(t, e, before+1)
		return p
	}
	t.Run("zero", func(t *testing.T) {
		p := dial(t, wire.AppendHello(nil, rawInstance(), 0))
		require.ErrorIs(t, e.Send(context.Background(), p.addr, team(9), "z", []byte("x")), core.ErrMessageTooLarge)
		require.NoError(t, e.Send(context.Background(), p.addr, team(9), "z", nil))
		_, _, msgs := p.acceptChannel(1)
		require.Empty(t, msgs[0])
	})
	t.Run("huge", func(t *testing.T) {
		p := dial(t, wire.AppendHello(nil, rawInstance(), 1<<62-1))
		require.NoError(t, e.Send(context.Background(), p.addr, team(9), "h", make([]byte, 200<<10)))
		require.ErrorIs(t, e.Send(context.Background(), p.addr, team(9), "h", make([]byte, 16<<20+1)), core.ErrMessageTooLarge)
		_, _, msgs := p.acceptChannel(1)
		require.Len(t, msgs[0], 200<<10)
	})
	t.Run("trailing", func(t *testing.T) {
		// Flags with only a bit this version does not know, then fields of
		// a later version: both ignored.
		hello := wire.AppendHelloFields(nil, wire.Hello{Instance: rawInstance(), MaxMessageSize: 100, Flags: 0x20})
		p := dial(t, append(hello, 1, 2, 3, 4))
		require.ErrorIs(t, e.Send(context.Background(), p.addr, team(9), "t", make([]byte, 101)), core.ErrMessageTooLarge)
		require.NoError(t, e.Send(context.Background(), p.addr, team(9), "t", make([]byte, 100)))
		p.acceptChannel(1)
	})
	t.Run("truncated", func(t *testing.T) {
		id := rawInstance()
		hello := append(id[:], 0x80) // a 4-byte varint cut after its first byte
		tr := rawTransport(t)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn, err := tr.Dial(ctx, net.UDPAddrFromAddrPort(e.LocalAddr()), rawTLS(issue(t, "raw"), ""), rawQUIC)
		require.NoError(t, err)
		ctrl, err := conn.OpenUniStream()
		require.NoError(t, err)
		_, _ = ctrl.Write(wire.AppendControl(nil, wire.ControlHello, hello))
		select {
		case <-conn.Context().Done():
			t.Logf("closed: %v", context.Cause(conn.Context()))
		case <-ctx.Done():
			t.Fatal("a HELLO with a truncated limit was not refused")
		}
	})
}

// Attack 1c: Endpoint.Close (free) while sends on several channels are
// blocked under backpressure (bob does not read) and while a dial to a
// peer that never answers is in progress. Close must return within its
// bound, every blocked Send must return, and every accepted message that
// bob never gets must be counted (Close's error or the stats).
func TestAttackFreeWhileBlockedAndDialing(t *testing.T) {
	ca := config(t, "alice")
	ca.DrainTimeout = 500 * time.Millisecond
	ca.SendBufferBytes = 4096
	ca.SendTimeout = 20 * time.Second
	ca.ConnectTimeout = 10 * time.Second
	cb := config(t, "bob")
	cb.MaxQueueMessages = 1
	a, b := endpoint(t, ca), endpoint(t, cb)
	// A peer that never answers.
	hole, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer hole.Close()
	holeAddr := hole.LocalAddr().(*net.UDPAddr).AddrPort()

	const channels, total, size = 3, 100000, 1000
	var senders []*orderedSender
	for c := 0; c < channels; c++ {
		senders = append(senders, startOrderedSender(sendSpec{from: a, to: b.LocalAddr(), team: 3, label: fmt.Sprintf("f%d", c),
			total: total, size: size, stopOnError: true}))
	}
	holeErr := make(chan error, 1)
	go func() { holeErr <- a.Send(context.Background(), holeAddr, team(3), "hole", []byte("x")) }()
	time.Sleep(700 * time.Millisecond) // sends are blocked, the dial is in progress
	start := time.Now()
	closeErr := a.Close()
	took := time.Since(start)
	returned := make(chan struct{})
	go func() {
		for _, s := range senders {
			<-s.done
		}
		close(returned)
	}()
	select {
	case <-returned:
	case <-time.After(3 * time.Second):
		t.Fatal("blocked sends did not return after Close")
	}
	var he error
	select {
	case he = <-holeErr:
	case <-time.After(3 * time.Second):
		t.Fatal("the send waiting for a dial did not return after Close")
	}
	got := collect(b, 1<<20, time.Second, 10*time.Second)
	reported := unconfirmedOf(t, "Close", closeErr)
	st := a.Stats()
	missing := 0
	for _, s := range senders {
		rep := checkSeq(got, s.label, size, total, s.isAccepted)
		t.Logf("%s: first error %v; %v", s.label, s.firstErr.Load(), rep)
		require.Zero(t, rep.outOfOrder+rep.duplicates+rep.foreign, "%v", rep)
		missing += len(rep.missing)
	}
	t.Logf("Close took %v: %v; hole send: %v; missing=%d reported=%d stats unconfirmed=%d", took.Round(time.Millisecond), closeErr, he, missing, reported, st.MessagesUnconfirmed)
	require.ErrorIs(t, he, core.ErrClosed)
	require.LessOrEqual(t, uint64(missing), max(reported, st.MessagesUnconfirmed))
}

// Confirmation means "queued at the receiver": when the receiver's own
// application frees its endpoint without taking what was queued, those
// messages were confirmed to the sender and are dropped at the receiver.
// That is the receiver's choice, and its endpoint counts it
// (Stats.DroppedAtClose, and a WARN log), so the loss is not silent.
func TestAttackReceiverCloseCountsDroppedMessages(t *testing.T) {
	a, b := endpoint(t, config(t, "alice")), endpoint(t, config(t, "bob"))
	for i := 0; i < 10; i++ {
		require.NoError(t, a.Send(context.Background(), b.LocalAddr(), team(9), "d", payload("d", i, 16)))
	}
	require.NoError(t, a.CloseConnection(b.LocalAddr()), "bob queued (confirmed) all ten")
	qb := b.Stats().QueueMessages
	require.NoError(t, b.Close())
	sb := b.Stats()
	t.Logf("bob had %d queued; dropped at close %d", qb, sb.DroppedAtClose)
	require.Equal(t, uint64(10), qb)
	require.Equal(t, uint64(10), sb.DroppedAtClose, "the receiver counts what its free dropped")
}

// Attack 4: bob restarts on the same address with the same identity while
// alice's channel is busy. Each instance sees strictly increasing
// sequence numbers, and no message reaches both.
func TestAttackPeerRestartSameAddress(t *testing.T) {
	ca := config(t, "alice")
	ca.DrainTimeout = time.Second
	cb := config(t, "bob")
	a := endpoint(t, ca)
	b1, err := core.NewEndpoint(cb)
	require.NoError(t, err)
	cb.BindAddr = b1.LocalAddr().String()
	addr := b1.LocalAddr()

	const total, size = 1 << 20, 100
	stop := make(chan struct{})
	s := startOrderedSender(sendSpec{from: a, to: addr, team: 9, label: "rs", total: total, size: size, stop: stop, errPause: 10 * time.Millisecond})
	r1 := make(chan []received, 1)
	go func() { r1 <- collect(b1, 1<<20, 3*time.Second, 3*time.Second) }()
	time.Sleep(500 * time.Millisecond)
	errB1 := b1.Close()
	got1 := <-r1
	b2 := endpoint(t, cb)
	got2 := collect(b2, 1<<20, 1500*time.Millisecond, 2*time.Second)
	close(stop)
	<-s.done
	got2 = append(got2, collect(b2, 1<<20, 500*time.Millisecond, 5*time.Second)...)
	rep1 := checkSeq(got1, "rs", size, total, func(int) bool { return false })
	rep2 := checkSeq(got2, "rs", size, total, func(int) bool { return false })
	both := 0
	seen := map[string]bool{}
	for _, m := range got1 {
		seen[string(m.msg)] = true
	}
	for _, m := range got2 {
		if seen[string(m.msg)] {
			both++
		}
	}
	all := append(append([]received(nil), got1...), got2...)
	repAll := checkSeq(all, "rs", size, total, s.isAccepted)
	st := a.Stats()
	// What bob1 had queued but its application had not taken when it
	// closed was confirmed to alice and then dropped: bob1 counts it.
	dropped := b1.Stats().DroppedAtClose
	t.Logf("bob1 Close: %v; dropped at close %d; bob1: %v", errB1, dropped, rep1)
	t.Logf("bob2: %v", rep2)
	t.Logf("both: %d; overall missing=%d; alice failures=%d first=%v unconfirmed=%d lost=%d dials=%d", both, len(repAll.missing), s.failed.Load(), s.firstErr.Load(), st.MessagesUnconfirmed, st.ConnectionsLost, st.Dials)
	require.Zero(t, rep1.outOfOrder+rep1.duplicates, "bob1: %v", rep1)
	require.Zero(t, rep2.outOfOrder+rep2.duplicates, "bob2: %v", rep2)
	require.Zero(t, both, "messages delivered to both instances")
	require.NotZero(t, rep2.received, "the restarted instance got nothing")
	require.LessOrEqualf(t, uint64(len(repAll.missing)), st.MessagesUnconfirmed+unconfirmedOf(t, "bob1 Close", errB1)+dropped,
		"%d accepted messages reached neither instance (first %v), nothing reported them", len(repAll.missing), repAll.missing[:min(5, len(repAll.missing))])
}

// Attack 2: more channels than bob allows streams, sent concurrently,
// while alice keeps closing the connection and bob reads slowly: every
// CloseConnection that returns nil must not have lost anything, order must
// hold, and what is missing must be counted.
func TestAttackStreamLimitChannelsWhileClosing(t *testing.T) {
	ca := config(t, "alice")
	ca.DrainTimeout = 2 * time.Second
	ca.SendTimeout = 5 * time.Second
	cb := config(t, "bob")
	cb.MaxChannelsPerPeer = 2
	cb.MaxQueueMessages = 4
	a, b := endpoint(t, ca), endpoint(t, cb)
	const channels, total, size = 6, 1 << 16, 2000
	var senders []*orderedSender
	stop := make(chan struct{})
	for c := 0; c < channels; c++ {
		senders = append(senders, startOrderedSender(sendSpec{from: a, to: b.LocalAddr(), team: 6, label: fmt.Sprintf("l%d", c),
			total: total, size: size, stop: stop}))
	}
	reader := startPacedReader(b, 300*time.Microsecond, time.Second)
	var nilCloses, errCloses int
	var reported uint64
	deadline := time.Now().Add(4 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		err := a.CloseConnection(b.LocalAddr())
		if err == nil {
			nilCloses++
		} else {
			errCloses++
			reported += unconfirmedOf(t, "CloseConnection", err)
		}
	}
	close(stop)
	for _, s := range senders {
		<-s.done
	}
	final := a.CloseConnection(b.LocalAddr())
	reported += unconfirmedOf(t, "final CloseConnection", final)
	got := reader.finish()
	time.Sleep(300 * time.Millisecond)
	st := a.Stats()
	missing := 0
	bad := false
	for _, s := range senders {
		rep := checkSeq(got, s.label, size, total, s.isAccepted)
		t.Logf("%s: failed=%d first=%v; %v", s.label, s.failed.Load(), s.firstErr.Load(), rep)
		missing += len(rep.missing)
		bad = bad || rep.outOfOrder+rep.duplicates+rep.foreign > 0
	}
	t.Logf("closes nil=%d err=%d (reported %d), final %v; missing=%d stats unconfirmed=%d lost=%d dials=%d", nilCloses, errCloses, reported, final, missing, st.MessagesUnconfirmed, st.ConnectionsLost, st.Dials)
	require.False(t, bad, "order broken (see log)")
	require.LessOrEqual(t, uint64(missing), st.MessagesUnconfirmed)
	if errCloses == 0 && final == nil {
		require.Zerof(t, missing, "every CloseConnection returned nil, yet %d accepted messages never arrived", missing)
	}
}
