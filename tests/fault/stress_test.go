package fault

// Stress test of the delivery promise under a mix of every lifecycle event
// at once: sends from many goroutines, CloseConnection, eviction
// (MaxConnections), the peer closing, the peer freed (Endpoint.Close) and
// restarted on the same address, on every side.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aranya-quic/aranya-quic/core"
)

const (
	// stressMsgs is how many numbered messages each sender sends to each
	// peer on each channel.
	stressMsgs     = 30000
	stressChannels = 2
	stressSize     = 24
	stressTeam     = 7
	// stressCloseInFlight bounds each closer's CloseConnection calls that
	// have not returned yet (each waits for its drain).
	stressCloseInFlight = 8
	// stressRetry is the pause before a failed Send is retried.
	stressRetry = 20 * time.Millisecond
	// stressQuiet is how long no message may arrive anywhere before the
	// receivers are taken to have everything.
	stressQuiet = 500 * time.Millisecond
	// stressHang only stops a hung round; it is not a timing assertion.
	stressHang = 3 * time.Minute
)

// The four endpoints. D is the one freed and restarted.
var stressNodes = []string{"A", "B", "C", "D"}

// stressRestarts lists, per restart of D, the share of the messages from
// A, B and C to D accepted before D is freed (so that every instance of D
// gets some); the first restart also waits for that share of D's own
// messages (so that D does send before it is freed). Odd rounds restart D
// once.
var stressRestarts = [][]float64{{0.25, 0.6}, {0.4}}

var stressRounds = soakRounds(1, 5)

// Four endpoints (MaxConnections 2, so talking to three peers evicts) send
// numbered messages to each other on two channels per pair, from one
// goroutine per (peer, channel), while a closer on every endpoint closes
// the connection to a random peer every few milliseconds, and D is freed
// and restarted on the same address mid-run (once or twice). D's own
// senders run on its first instance only: they stop when it is freed.
// Senders to D retry a Send that failed (an error means not accepted, so a
// retry cannot duplicate); errors other than ErrConnection / ErrTimeout /
// ErrClosed, and any error sending to A, B or C, fail the test.
//
// Asserted:
//   - every receiver instance sees, per (sender, channel), strictly
//     increasing sequence numbers, no duplicate, intact content, on the
//     right channel from the right address;
//   - no message arrives whose every Send returned an error;
//   - CloseConnection and Close return nil or an *UnconfirmedError;
//   - at A, B and C (never freed), after the senders finished, a quiet
//     period, and a final CloseConnection of every connection: the
//     accepted messages of each sender S that did not arrive are at most
//     what S reported: the Messages of its *UnconfirmedError returns plus
//     S.Stats().MessagesUnconfirmed. D's receivers are checked for order
//     and duplicates only: freeing an endpoint drops what its application
//     had not read.
func TestStressMixedLifecycle(t *testing.T) {
	for round := 0; round < stressRounds; round++ {
		stressRound(t, round, stressRestarts[round%len(stressRestarts)])
	}
}

func stressLabel(from, to string, ch int) string { return fmt.Sprintf("%s-%s-%d", from, to, ch) }

// stressInst is one instance of an endpoint: A, B and C have one, D one
// per start.
type stressInst struct {
	name  string // "A", ..., "D#0", "D#1", ...
	node  string // "A", ..., "D"
	ep    *core.Endpoint
	freed atomic.Bool // set before Close: its senders stop, its reader ends
	rd    *stressReader
	cl    *stressCloser
	stop  context.CancelFunc // stops the closer

	closeErr error      // Close, when it was freed mid-run
	stats    core.Stats // taken after the final closes (or after Close)
}

// stressReader reads everything an instance receives and checks order.
type stressReader struct {
	node  string
	addrs map[string]netip.AddrPort
	done  chan struct{}
	count atomic.Int64
	last  atomic.Int64 // UnixNano of the last message

	// Owned by the reading goroutine until done closes.
	high     map[string]int
	seen     map[string][]bool
	dups     int
	disorder int
	bad      int
	problems []string
	recvErr  error
}

func (r *stressReader) problem(format string, args ...any) {
	if len(r.problems) < 10 {
		r.problems = append(r.problems, fmt.Sprintf(format, args...))
	}
}

func startStressReader(ctx context.Context, in *stressInst, addrs map[string]netip.AddrPort) *stressReader {
	r := &stressReader{
		node:  in.node,
		addrs: addrs,
		done:  make(chan struct{}),
		high:  map[string]int{},
		seen:  map[string][]bool{},
	}
	r.last.Store(time.Now().UnixNano())
	go func() {
		defer close(r.done)
		buf := make([]byte, 4096)
		for {
			ch, n, err := in.ep.ReceiveContext(ctx, buf)
			if err != nil {
				if ctx.Err() == nil && !(in.freed.Load() && errors.Is(err, core.ErrClosed)) {
					r.recvErr = err
				}
				return
			}
			r.count.Add(1)
			r.last.Store(time.Now().UnixNano())
			r.check(ch, buf[:n])
		}
	}()
	return r
}

func (r *stressReader) check(ch core.Channel, msg []byte) {
	label, seq, err := parseSeq(msg)
	if err != nil {
		r.bad++
		r.problem("%v", err)
		return
	}
	f := strings.Split(label, "-")
	if len(f) != 3 || f[1] != r.node {
		r.bad++
		r.problem("message %q is not for %s", msg, r.node)
		return
	}
	from, ok := r.addrs[f[0]]
	if !ok {
		r.bad++
		r.problem("message %q from an unknown sender", msg)
		return
	}
	if ch.Kind != core.KindChannel || ch.Label != label || ch.TeamID != team(stressTeam) {
		r.bad++
		r.problem("message %q arrived on channel kind %v label %q team %x", msg, ch.Kind, ch.Label, ch.TeamID[:2])
	}
	if ch.Addr != from {
		r.bad++
		r.problem("message %q arrived from %v, its sender is %v", msg, ch.Addr, from)
	}
	if string(msg) != string(payload(label, seq, stressSize)) {
		r.bad++
		r.problem("message %q: content corrupted", msg)
	}
	if seq < 0 || seq >= stressMsgs {
		r.bad++
		r.problem("message %q: seq out of range", msg)
		return
	}
	s := r.seen[label]
	if s == nil {
		s = make([]bool, stressMsgs)
		r.seen[label] = s
	}
	if s[seq] {
		r.dups++
		r.problem("%s: seq %d again", label, seq)
	}
	if hi, ok := r.high[label]; ok && seq <= hi {
		r.disorder++
		r.problem("%s: seq %d after %d", label, seq, hi)
	} else {
		r.high[label] = seq
	}
	s[seq] = true
}

func (r *stressReader) ok() bool {
	return r.dups == 0 && r.disorder == 0 && r.bad == 0 && r.recvErr == nil
}

func (r *stressReader) String() string {
	return fmt.Sprintf("received=%d duplicates=%d outOfOrder=%d bad=%d recvErr=%v first problems: %s",
		r.count.Load(), r.dups, r.disorder, r.bad, r.recvErr, strings.Join(r.problems, "; "))
}

// stressCloser closes the connection to a random peer every few
// milliseconds, without waiting for earlier closes to return (up to
// stressCloseInFlight at once).
type stressCloser struct {
	done chan struct{}

	mu              sync.Mutex
	closes          int // during the run
	unconfirmedErrs int
	reported        uint64 // sum of the *UnconfirmedError Messages
	bad             []string
}

// record counts one CloseConnection result: nil, or an *UnconfirmedError
// whose count adds to what the sender reported. final marks the closes
// after the run, which are not counted in closes.
func (c *stressCloser) record(what string, final bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !final {
		c.closes++
	}
	if err == nil {
		return
	}
	var ue *core.UnconfirmedError
	if errors.Is(err, core.ErrUnconfirmed) && errors.As(err, &ue) {
		c.unconfirmedErrs++
		c.reported += ue.Messages
		return
	}
	c.bad = append(c.bad, fmt.Sprintf("%s: %v", what, err))
}

func startStressCloser(ctx context.Context, ep *core.Endpoint, peers map[string]netip.AddrPort) *stressCloser {
	c := &stressCloser{done: make(chan struct{})}
	names := make([]string, 0, len(peers))
	for n := range peers {
		names = append(names, n)
	}
	slices.Sort(names)
	go func() {
		defer close(c.done)
		var wg sync.WaitGroup
		defer wg.Wait()
		sem := make(chan struct{}, stressCloseInFlight)
		for {
			tm := time.NewTimer(time.Duration(1+rand.IntN(5)) * time.Millisecond)
			select {
			case <-ctx.Done():
				tm.Stop()
				return
			case <-tm.C:
			}
			select {
			case sem <- struct{}{}:
			default:
				continue
			}
			peer := names[rand.IntN(len(names))]
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				c.record("CloseConnection("+peer+")", false, ep.CloseConnection(peers[peer]))
			}()
		}
	}()
	return c
}

// stressSender sends stressMsgs numbered messages on one channel.
type stressSender struct {
	from, to string
	label    string
	done     chan struct{}

	// Owned by the sending goroutine until done closes.
	accepted  []bool
	sent      int
	downErrs  int // failed sends to D, retried
	firstDown error
	failures  int
	firstFail []string
	stoppedAt int   // D's senders: the seq at which D was freed, else -1
	endErr    error // D's senders: the error that ended them
}

func (s *stressSender) fail(format string, args ...any) {
	s.failures++
	if len(s.firstFail) < 5 {
		s.firstFail = append(s.firstFail, fmt.Sprintf(format, args...))
	}
}

func pause(ctx context.Context, d time.Duration) {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
	case <-tm.C:
	}
}

// run sends from in to addr. Sends to D (toD) that fail with a connection,
// timeout or closed error are retried with the same seq; once in is freed
// the sender stops at its first error; any other error is a failure (and
// retried, so that the run goes on).
func (s *stressSender) run(ctx context.Context, in *stressInst, addr netip.AddrPort, toD bool, progress *atomic.Int64) {
	defer close(s.done)
	s.stoppedAt = -1
	for seq := 0; seq < len(s.accepted); {
		if ctx.Err() != nil {
			s.fail("stopped at seq %d: %v", seq, ctx.Err())
			return
		}
		err := in.ep.Send(ctx, addr, team(stressTeam), s.label, payload(s.label, seq, stressSize))
		retryable := errors.Is(err, core.ErrConnection) || errors.Is(err, core.ErrTimeout) || errors.Is(err, core.ErrClosed)
		switch {
		case err == nil:
			s.accepted[seq] = true
			s.sent++
			seq++
			if progress != nil {
				progress.Add(1)
			}
		case in.freed.Load():
			// Our endpoint is being freed: the rest is not sent.
			s.stoppedAt, s.endErr = seq, err
			if !retryable {
				s.fail("seq %d while %s was freed: %v", seq, in.name, err)
			}
			return
		case toD && retryable:
			s.downErrs++
			if s.firstDown == nil {
				s.firstDown = fmt.Errorf("seq %d: %w", seq, err)
			}
			pause(ctx, stressRetry)
		default:
			s.fail("seq %d: %v", seq, err)
			pause(ctx, stressRetry)
		}
	}
}

// stressNew binds an instance of node, retrying for a while when the
// address is still taken (a restart on D's address).
func stressNew(t *testing.T, cfg core.Config) *core.Endpoint {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		e, err := core.NewEndpoint(cfg)
		if err == nil {
			return e
		}
		if !errors.Is(err, core.ErrConnection) || time.Now().After(deadline) {
			require.NoError(t, err, "binding %s", cfg.BindAddr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitQuiet waits until no reader got a message for stressQuiet (or max
// passed: the check then tells what is missing).
func waitQuiet(readers []*stressReader, limit time.Duration) {
	end := time.Now().Add(limit)
	for time.Now().Before(end) {
		var latest int64
		for _, r := range readers {
			latest = max(latest, r.last.Load())
		}
		quietFor := time.Since(time.Unix(0, latest))
		if quietFor >= stressQuiet {
			return // a wait, not an assertion: nothing is measured
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// within runs fn and fails the test if it has not returned after limit (a
// hang, not a timing assertion).
func within(t *testing.T, limit time.Duration, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
	case <-time.After(limit):
		t.Fatalf("%s still blocked after %v", what, limit)
	}
}

func stressRound(t *testing.T, round int, restarts []float64) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), stressHang)
	defer cancel()

	cfgs := map[string]core.Config{}
	for _, n := range stressNodes {
		cfg := config(t, "stress-"+n)
		cfg.MaxConnections = 2
		cfg.DrainTimeout = 10 * time.Second
		cfg.SendTimeout = 10 * time.Second
		cfgs[n] = cfg
	}

	var (
		insts []*stressInst // every instance, in start order
		cur   = map[string]*stressInst{}
	)
	defer func() {
		// Also on a failure mid-round: stop the goroutines and free every
		// instance (Close is idempotent), so that nothing outlives the
		// round.
		cancel()
		for _, in := range insts {
			in.freed.Store(true)
			in.ep.Close()
		}
	}()

	// Bind all four first: everyone needs everyone's address.
	addrs := map[string]netip.AddrPort{}
	for _, n := range stressNodes {
		in := &stressInst{name: n, node: n, ep: stressNew(t, cfgs[n])}
		if n == "D" {
			in.name = "D#0"
		}
		addrs[n] = in.ep.LocalAddr()
		insts = append(insts, in)
		cur[n] = in
	}
	// D restarts on the same address.
	dCfg := cfgs["D"]
	dCfg.BindAddr = addrs["D"].String()

	peersOf := func(node string) map[string]netip.AddrPort {
		p := map[string]netip.AddrPort{}
		for n, a := range addrs {
			if n != node {
				p[n] = a
			}
		}
		return p
	}
	startInst := func(in *stressInst) {
		cctx, stop := context.WithCancel(ctx)
		in.stop = stop
		in.rd = startStressReader(ctx, in, addrs)
		in.cl = startStressCloser(cctx, in.ep, peersOf(in.node))
	}
	for _, in := range insts {
		startInst(in)
	}

	// The senders: every endpoint to every other, per channel.
	var (
		progress  atomic.Int64 // accepted from A, B and C to D
		dProgress atomic.Int64 // accepted from D
		senders   []*stressSender
	)
	toDTotal := int64(3 * stressChannels * stressMsgs)
	for _, from := range stressNodes {
		in := cur[from]
		for _, to := range stressNodes {
			if to == from {
				continue
			}
			for ch := 0; ch < stressChannels; ch++ {
				s := &stressSender{from: from, to: to, label: stressLabel(from, to, ch),
					accepted: make([]bool, stressMsgs), done: make(chan struct{})}
				senders = append(senders, s)
				var p *atomic.Int64
				switch {
				case to == "D":
					p = &progress
				case from == "D":
					p = &dProgress
				}
				go s.run(ctx, in, addrs[to], to == "D", p)
			}
		}
	}
	allSent := make(chan struct{})
	go func() {
		for _, s := range senders {
			<-s.done
		}
		close(allSent)
	}()

	// Free and restart D as the run progresses.
	var downtimes []time.Duration
	for i, share := range restarts {
		for progress.Load() < int64(share*float64(toDTotal)) || (i == 0 && dProgress.Load() < int64(share*float64(toDTotal))) {
			select {
			case <-allSent:
				t.Fatalf("round %d: the senders finished before restart %d (to D %d, from D %d of %d)", round, i, progress.Load(), dProgress.Load(), toDTotal)
			case <-ctx.Done():
				t.Fatalf("round %d: hung before restart %d: to D %d, from D %d of %d", round, i, progress.Load(), dProgress.Load(), toDTotal)
			case <-time.After(10 * time.Millisecond):
			}
		}
		old := cur["D"]
		down := time.Now()
		old.freed.Store(true)
		within(t, 30*time.Second, "freeing "+old.name, func() {
			old.closeErr = old.ep.Close()
			old.stop()
			<-old.cl.done
			<-old.rd.done
		})
		old.stats = old.ep.Stats()
		// Stay down for a while, so that sends to D fail and are retried.
		time.Sleep(time.Duration(100+rand.IntN(400)) * time.Millisecond)
		in := &stressInst{name: fmt.Sprintf("D#%d", i+1), node: "D", ep: stressNew(t, dCfg)}
		downtimes = append(downtimes, time.Since(down))
		require.Equal(t, addrs["D"], in.ep.LocalAddr())
		insts = append(insts, in)
		cur["D"] = in
		startInst(in)
	}

	select {
	case <-allSent:
	case <-ctx.Done():
		var stuck []string
		for _, s := range senders {
			select {
			case <-s.done:
			default:
				stuck = append(stuck, s.label)
			}
		}
		t.Fatalf("round %d: senders hung: %v", round, stuck)
	}
	sendTook := time.Since(start)

	// Stop the closers, let everything arrive, then close every
	// connection gracefully and let that arrive too.
	live := []*stressInst{cur["A"], cur["B"], cur["C"], cur["D"]}
	for _, in := range live {
		in.stop()
	}
	within(t, 30*time.Second, "stopping the closers", func() {
		for _, in := range live {
			<-in.cl.done
		}
	})
	readers := make([]*stressReader, len(live))
	for i, in := range live {
		readers[i] = in.rd
	}
	waitQuiet(readers, 30*time.Second)
	var fwg sync.WaitGroup
	for _, in := range live {
		for peer, addr := range peersOf(in.node) {
			fwg.Add(1)
			go func() {
				defer fwg.Done()
				in.cl.record("final CloseConnection("+peer+")", true, in.ep.CloseConnection(addr))
			}()
		}
	}
	within(t, 30*time.Second, "the final CloseConnection calls", fwg.Wait)
	waitQuiet(readers, 30*time.Second)
	for _, in := range live {
		in.stats = in.ep.Stats()
	}
	cancel()
	within(t, 30*time.Second, "stopping the readers", func() {
		for _, in := range insts {
			<-in.rd.done
		}
	})

	// What arrived where: per receiver node (D's instances together, for
	// the "never accepted" check), per label, the seqs seen.
	seenAt := func(node, label string) func(int) bool {
		var sets [][]bool
		for _, in := range insts {
			if in.node == node {
				sets = append(sets, in.rd.seen[label])
			}
		}
		return func(seq int) bool {
			for _, s := range sets {
				if s != nil && s[seq] {
					return true
				}
			}
			return false
		}
	}
	type tally struct {
		accepted, missing, neverAccepted int
		firstMissing                     []string
	}
	bySender := map[string]*tally{}
	pair := map[string][2]int{} // "A>B": accepted, received
	var failures []string
	for _, s := range senders {
		tl := bySender[s.from]
		if tl == nil {
			tl = &tally{}
			bySender[s.from] = tl
		}
		seen := seenAt(s.to, s.label)
		p := pair[s.from+">"+s.to]
		var never []int
		for seq, acc := range s.accepted {
			got := seen(seq)
			if got {
				p[1]++
			}
			switch {
			case acc:
				p[0]++
				tl.accepted++
				if !got && s.to != "D" {
					tl.missing++
					if len(tl.firstMissing) < 10 {
						tl.firstMissing = append(tl.firstMissing, fmt.Sprintf("%s %d", s.label, seq))
					}
				}
			case got:
				tl.neverAccepted++
				if len(never) < 10 {
					never = append(never, seq)
				}
			}
		}
		if len(never) > 0 {
			failures = append(failures, fmt.Sprintf("%s: messages arrived that no Send returned nil for, seqs %v ...", s.label, never))
		}
		pair[s.from+">"+s.to] = p
		if s.failures > 0 {
			failures = append(failures, fmt.Sprintf("%s: %d Send failures: %s", s.label, s.failures, strings.Join(s.firstFail, "; ")))
		}
	}

	// Reported per sender: its closers' *UnconfirmedError counts, the
	// Close of a freed D, and its stats.
	reported := map[string]uint64{}
	unconfirmedStat := map[string]uint64{}
	var closes, evictions, dials, accepts, lost uint64
	var instLines []string
	for _, in := range insts {
		sender := in.name
		if in.node != "D" {
			sender = in.node
		} else if in.name == "D#0" {
			sender = "D"
		}
		in.cl.mu.Lock()
		reported[sender] += in.cl.reported
		closes += uint64(in.cl.closes)
		for _, b := range in.cl.bad {
			failures = append(failures, in.name+": "+b)
		}
		uc := in.cl.unconfirmedErrs
		in.cl.mu.Unlock()
		if in.closeErr != nil {
			var ue *core.UnconfirmedError
			if errors.As(in.closeErr, &ue) {
				reported[sender] += ue.Messages
			} else {
				failures = append(failures, fmt.Sprintf("%s: Close: %v", in.name, in.closeErr))
			}
		}
		unconfirmedStat[sender] += in.stats.MessagesUnconfirmed
		evictions += in.stats.Evictions
		dials += in.stats.Dials
		accepts += in.stats.Accepts
		lost += in.stats.ConnectionsLost
		if !in.rd.ok() {
			failures = append(failures, fmt.Sprintf("receiver %s: %v", in.name, in.rd))
		}
		instLines = append(instLines, fmt.Sprintf("%s: recv=%d closes=%d unconfErrs=%d closeErr=%v evict=%d dials=%d accepts=%d lost=%d unconfirmed=%d sent=%d",
			in.name, in.rd.count.Load(), in.cl.closes, uc, in.closeErr, in.stats.Evictions, in.stats.Dials, in.stats.Accepts,
			in.stats.ConnectionsLost, in.stats.MessagesUnconfirmed, in.stats.MessagesSent))
	}

	var pairs []string
	for _, from := range stressNodes {
		for _, to := range stressNodes {
			if from != to {
				p := pair[from+">"+to]
				pairs = append(pairs, fmt.Sprintf("%s>%s %d/%d", from, to, p[0], p[1]))
			}
		}
	}
	var downErrs int
	var firstDown error
	var dStopped []string
	for _, s := range senders {
		downErrs += s.downErrs
		if firstDown == nil {
			firstDown = s.firstDown
		}
		if s.stoppedAt >= 0 {
			dStopped = append(dStopped, fmt.Sprintf("%s@%d (%v)", s.label, s.stoppedAt, s.endErr))
		}
	}
	t.Logf("round %d: %v sending, %v in all; D restarts %d (down %v); sent/received: %s; closes=%d evictions=%d dials=%d accepts=%d lost=%d; sends to D failed (retried) %d",
		round, sendTook.Round(time.Millisecond), time.Since(start).Round(time.Millisecond), len(restarts), downtimes,
		strings.Join(pairs, " "), closes, evictions, dials, accepts, lost, downErrs)
	for _, l := range instLines {
		t.Logf("round %d: %s", round, l)
	}
	t.Logf("round %d: D's senders stopped at %v; first failed send to D: %v", round, dStopped, firstDown)
	for _, n := range stressNodes {
		tl := bySender[n]
		t.Logf("round %d: sender %s: accepted=%d missing at A/B/C=%d %v reported=%d statsUnconfirmed=%d arrivedNotAccepted=%d",
			round, n, tl.accepted, tl.missing, tl.firstMissing, reported[n], unconfirmedStat[n], tl.neverAccepted)
	}

	require.Emptyf(t, failures, "round %d", round)
	for _, n := range stressNodes {
		tl := bySender[n]
		require.LessOrEqualf(t, uint64(tl.missing), reported[n]+unconfirmedStat[n],
			"round %d: sender %s: %d accepted messages did not arrive at A/B/C (first: %v), but only %d were reported (%d by error returns, %d in the stats)",
			round, n, tl.missing, tl.firstMissing, reported[n]+unconfirmedStat[n], reported[n], unconfirmedStat[n])
	}
	// The run did exercise what it is about.
	require.Greaterf(t, closes, uint64(0), "round %d: no CloseConnection ran", round)
	require.Greaterf(t, evictions, uint64(0), "round %d: no eviction happened", round)
	for _, from := range []string{"A", "B", "C"} {
		for _, to := range []string{"A", "B", "C", "D"} {
			if from != to {
				require.Equalf(t, stressMsgs*stressChannels, pair[from+">"+to][0], "round %d: %s>%s accepted", round, from, to)
			}
		}
	}

	// Free everything; nothing is in flight any more.
	for _, in := range live {
		in.freed.Store(true)
		err := in.ep.Close()
		var ue *core.UnconfirmedError
		if err != nil && !errors.As(err, &ue) {
			require.NoErrorf(t, err, "round %d: Close of %s", round, in.name)
		}
		if err != nil {
			t.Logf("round %d: Close of %s: %v", round, in.name, err)
		}
	}
}
