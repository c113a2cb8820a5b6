package bbr2

import (
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const (
	testMSS  = 1400
	mbit     = 1e6 / 8 // bytes per second in one Mbit/s
	linkRate = 50 * mbit
	baseRTT  = 40 * time.Millisecond
)

// bdpBytes is the bandwidth-delay product of the default test path.
func bdpBytes(rate float64, rtt time.Duration) int64 { return int64(rate * rtt.Seconds()) }

// newTestSender returns a Sender whose random choices (probe wait times) come
// from a fixed seed, so every simulation is reproducible.
func newTestSender(seed uint64) *Sender {
	s := NewSender(testMSS)
	s.rng = rand.New(rand.NewPCG(seed, seed^0x5851f42d4c957f2d))
	return s
}

type runStats struct {
	goodput    float64 // bytes per second over the measured interval
	lossRate   float64 // lost packets / sent packets over the measured interval
	meanQueue  time.Duration
	maxQueue   time.Duration
	tailDrops  int64
	randDrops  int64
	maxState   int
	finalState int
}

// runSingle simulates one flow over cfg for dur and measures the second half.
func runSingle(t *testing.T, cfg linkConfig, cc ccUnderTest, dur time.Duration) (runStats, *flow) {
	t.Helper()
	s := newSim(cfg)
	f := s.addFlow(cc, testMSS, simStart)
	if r, ok := cc.(*renoSender); ok {
		r.srtt = &f.srtt
	}
	mid := simStart + Time(dur/2)
	f.statsFrom = mid
	s.link.statsFrom = mid
	end := simStart + Time(dur)
	s.run(mid)
	sentAtMid := f.sentPackets
	s.run(end)
	st := runStats{
		goodput:   f.goodput(end),
		meanQueue: s.link.meanQueueDelay(),
		maxQueue:  s.link.maxQueueDelay,
		tailDrops: s.link.tailDrops,
		randDrops: s.link.randomDrops,
		maxState:  f.maxStateSize,
	}
	if sent := f.sentPackets - sentAtMid; sent > 0 {
		st.lossRate = float64(f.lostPackets) / float64(sent)
	}
	if b, ok := cc.(*Sender); ok {
		st.finalState = len(b.packets)
	}
	return st, f
}

func mbps(bytesPerSecond float64) float64 { return bytesPerSecond / mbit }

// TestConvergesToBottleneckRate: on a clean 50 Mbit/s, 40 ms path with a
// 4-BDP buffer, BBRv2 must deliver >= 90% of the link rate in steady state,
// estimate the bandwidth within 15%, and (BBR's point) keep the standing
// queue below one min RTT where a loss-based sender fills the buffer.
func TestConvergesToBottleneckRate(t *testing.T) {
	t.Parallel()
	cfg := linkConfig{rate: linkRate, rtt: baseRTT, buffer: 4 * bdpBytes(linkRate, baseRTT), seed: 1}
	b := newTestSender(1)
	st, f := runSingle(t, cfg, b, 20*time.Second)
	t.Logf("bbr2: goodput %.2f Mbit/s, bw estimate %.2f Mbit/s, min RTT %v, mean queue %v, max queue %v, cwnd %d, mode %s, loss %.3f%%",
		mbps(st.goodput), mbps(float64(b.BandwidthEstimate())), b.MinRTT(), st.meanQueue, st.maxQueue, b.GetCongestionWindow(), b.Mode(), 100*st.lossRate)
	require.GreaterOrEqual(t, st.goodput, 0.9*linkRate, "goodput")
	require.InDelta(t, linkRate, float64(b.BandwidthEstimate()), 0.15*linkRate, "bandwidth estimate")
	require.InDelta(t, float64(baseRTT), float64(b.MinRTT()), float64(5*time.Millisecond), "min RTT")
	require.Less(t, st.meanQueue, baseRTT, "mean queueing delay must stay below 1x min RTT")
	require.Less(t, st.maxState, 4*int(bdpBytes(linkRate, baseRTT)/testMSS)+64, "packet state must stay bounded by what is in flight")
	require.LessOrEqual(t, st.finalState, len(f.history), "no state kept beyond outstanding packets")

	// The same path with the NewReno model: it fills the buffer, which is
	// what the BBR queue bound above is contrasted with.
	r := newRenoSender(testMSS, nil)
	rst, _ := runSingle(t, cfg, r, 20*time.Second)
	t.Logf("reno:  goodput %.2f Mbit/s, mean queue %v, max queue %v", mbps(rst.goodput), rst.meanQueue, rst.maxQueue)
	require.Greater(t, rst.meanQueue, 2*st.meanQueue, "the loss-based baseline should queue far more")
}

// TestRandomLoss: with 1% random loss BBRv2 keeps >= 50% of the link and at
// least twice the NewReno model's throughput (Reno halves on every loss
// episode and, at 1% loss, can hold only a few dozen packets in flight).
func TestRandomLoss(t *testing.T) {
	t.Parallel()
	cfg := linkConfig{rate: linkRate, rtt: baseRTT, buffer: bdpBytes(linkRate, baseRTT), lossRate: 0.01, seed: 2}
	b := newTestSender(2)
	st, _ := runSingle(t, cfg, b, 20*time.Second)
	r := newRenoSender(testMSS, nil)
	rst, _ := runSingle(t, cfg, r, 20*time.Second)
	t.Logf("1%% loss: bbr2 %.2f Mbit/s (bw est %.2f, inflight_hi %s, mode %s), reno %.2f Mbit/s, ratio %.2f",
		mbps(st.goodput), mbps(float64(b.BandwidthEstimate())), fmtBound(b.inflightHi), b.Mode(), mbps(rst.goodput), st.goodput/rst.goodput)
	require.GreaterOrEqual(t, st.goodput, 0.5*linkRate)
	require.GreaterOrEqual(t, st.goodput, 2*rst.goodput)
}

// fmtBound formats an inflight bound in bytes, "unset" for no bound.
func fmtBound(v int64) string {
	if v == noBound {
		return "unset"
	}
	return strconv.FormatInt(v, 10)
}

// TestShallowBufferBacksOff: a buffer of a tenth of a BDP overflows whenever
// the sender probes. BBRv2 must learn inflight_hi from the losses and keep
// the loss rate low instead of probing into the drop-tail over and over.
func TestShallowBufferBacksOff(t *testing.T) {
	t.Parallel()
	bdp := bdpBytes(linkRate, baseRTT)
	cfg := linkConfig{rate: linkRate, rtt: baseRTT, buffer: bdp / 10, seed: 3}
	b := newTestSender(3)
	st, _ := runSingle(t, cfg, b, 20*time.Second)
	t.Logf("shallow buffer: goodput %.2f Mbit/s, loss %.2f%%, tail drops %d, inflight_hi %s (BDP %d), inflight_lo %s",
		mbps(st.goodput), 100*st.lossRate, st.tailDrops, fmtBound(b.inflightHi), bdp, fmtBound(b.inflightLo))
	require.NotEqual(t, noBound, b.inflightHi, "losses must have set inflight_hi")
	require.Less(t, b.inflightHi, 2*bdp, "inflight_hi must be reduced to about the path's capacity")
	require.Less(t, st.lossRate, 0.05, "loss rate must stay bounded")
	require.GreaterOrEqual(t, st.goodput, 0.7*linkRate)
}

// TestStartupExitsOnLoss: with a shallow buffer Startup ends on its loss
// signal (not only on a bandwidth plateau), setting inflight_hi.
func TestStartupExitsOnLoss(t *testing.T) {
	t.Parallel()
	bdp := bdpBytes(linkRate, baseRTT)
	cfg := linkConfig{rate: linkRate, rtt: baseRTT, buffer: bdp / 10, seed: 4}
	s := newSim(cfg)
	b := newTestSender(4)
	s.addFlow(b, testMSS, simStart)
	var exitedAt Time
	for step := Time(0); step < Time(3*time.Second); step += Time(time.Millisecond) {
		s.run(simStart + step)
		if !b.InSlowStart() && exitedAt == 0 {
			exitedAt = s.now
			break
		}
	}
	require.NotZero(t, exitedAt, "Startup must end")
	t.Logf("startup ended after %v, inflight_hi %s, full_bw %.2f Mbit/s", time.Duration(exitedAt-simStart), fmtBound(b.inflightHi), mbps(b.maxBW))
	require.NotEqual(t, noBound, b.inflightHi, "a loss-triggered Startup exit sets inflight_hi")
}

// TestTwoFlowsShare: two BBRv2 flows through one bottleneck each get at
// least a third of it, whether they start together or the second joins an
// established flow (the harder case: the incumbent's queue makes the
// newcomer leave Startup early with a low estimate, and it has to win its
// share back by probing). Different seeds per case, so the property is not an accident
// of one random sequence.
//
// (A wider sweep, 12 seeds x buffers of 0.5-4 BDP, gave a worst share of
// 0.39 for staggered starts over 40 s and 0.42 for simultaneous starts.)
func TestTwoFlowsShare(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		stagger time.Duration
		total   time.Duration
		buffer  float64 // in BDP
	}{
		{"together-1bdp", 0, 20 * time.Second, 1},
		{"together-2bdp", 0, 20 * time.Second, 2},
		{"staggered-1bdp", 2 * time.Second, 40 * time.Second, 1},
		{"staggered-2bdp", 2 * time.Second, 40 * time.Second, 2},
	}
	// 20 Mbit/s rather than 50 keeps this many runs fast under -race; the
	// dynamics are the same in units of BDP and RTT. One run at 50 Mbit/s
	// covers the headline configuration.
	type run struct {
		rate float64
		seed uint64
	}
	for i, c := range cases {
		runs := []run{{20 * mbit, uint64(i + 1)}}
		if i == len(cases)-1 {
			runs = append(runs, run{50 * mbit, 1})
		}
		for _, r := range runs {
			linkRate, seed := r.rate, r.seed
			cfg := linkConfig{rate: linkRate, rtt: baseRTT, buffer: int64(c.buffer * float64(bdpBytes(linkRate, baseRTT))), seed: seed}
			s := newSim(cfg)
			fa := s.addFlow(newTestSender(seed*100), testMSS, simStart)
			fb := s.addFlow(newTestSender(seed*100+1), testMSS, simStart+Time(c.stagger))
			end := simStart + Time(c.total)
			mid := simStart + Time(c.total/2)
			fa.statsFrom, fb.statsFrom, s.link.statsFrom = mid, mid, mid
			s.run(end)
			ga, gb := fa.goodput(end), fb.goodput(end)
			t.Logf("%s %.0f Mbit/s seed %d: %.2f + %.2f = %.2f Mbit/s (shares %.2f/%.2f), mean queue %v",
				c.name, mbps(linkRate), seed, mbps(ga), mbps(gb), mbps(ga+gb), ga/linkRate, gb/linkRate, s.link.meanQueueDelay())
			require.GreaterOrEqual(t, ga, linkRate/3, "%s seed %d: first flow", c.name, seed)
			require.GreaterOrEqual(t, gb, linkRate/3, "%s seed %d: second flow", c.name, seed)
			require.GreaterOrEqual(t, ga+gb, 0.9*linkRate, "%s seed %d: link utilisation", c.name, seed)
		}
	}
}

// TestProbeRTTAndMinRTTTracking: ProbeRTT recurs about every 5 s, and the
// min RTT estimate follows a change of the path's propagation delay, up
// (within the 10 s filter window) and down (immediately).
func TestProbeRTTAndMinRTTTracking(t *testing.T) {
	t.Parallel()
	// 10 Mbit/s: the RTT dynamics do not depend on the rate, and the run
	// is 35 s of simulated time.
	const linkRate = 10 * mbit
	cfg := linkConfig{rate: linkRate, rtt: baseRTT, buffer: 2 * bdpBytes(linkRate, baseRTT), seed: 6}
	s := newSim(cfg)
	b := newTestSender(6)
	s.addFlow(b, testMSS, simStart)
	var probeRTTTimes []time.Duration
	wasProbeRTT := false
	step := func(until Time) {
		for s.now < until {
			s.run(min(until, s.now+Time(time.Millisecond)))
			in := b.Mode() == "probe_rtt"
			if in && !wasProbeRTT {
				probeRTTTimes = append(probeRTTTimes, time.Duration(s.now-simStart))
			}
			wasProbeRTT = in
		}
	}
	step(simStart + Time(20*time.Second))
	t.Logf("ProbeRTT entered at %v", probeRTTTimes)
	require.GreaterOrEqual(t, len(probeRTTTimes), 3, "ProbeRTT every ~5 s")
	for i := 1; i < len(probeRTTTimes); i++ {
		gap := probeRTTTimes[i] - probeRTTTimes[i-1]
		require.Greater(t, gap, 4*time.Second)
		require.Less(t, gap, 11*time.Second)
	}
	require.InDelta(t, float64(baseRTT), float64(b.MinRTT()), float64(3*time.Millisecond))

	// Path RTT doubles: the old minimum must expire.
	s.link.oneWay = 40 * time.Millisecond
	step(s.now + Time(15*time.Second))
	t.Logf("after RTT 40->80 ms: min RTT %v", b.MinRTT())
	require.InDelta(t, float64(80*time.Millisecond), float64(b.MinRTT()), float64(5*time.Millisecond))

	// Path RTT drops: picked up at once.
	s.link.oneWay = 10 * time.Millisecond
	step(s.now + Time(500*time.Millisecond))
	t.Logf("after RTT 80->20 ms: min RTT %v", b.MinRTT())
	require.InDelta(t, float64(20*time.Millisecond), float64(b.MinRTT()), float64(3*time.Millisecond))
}

// TestAppLimitedDoesNotInflateEstimate: a sender whose application writes
// only 5 Mbit/s onto a 50 Mbit/s path must not report a bandwidth far above
// what it actually sends, nor grow its window without bound.
func TestAppLimitedDoesNotInflateEstimate(t *testing.T) {
	t.Parallel()
	cfg := linkConfig{rate: linkRate, rtt: baseRTT, buffer: 2 * bdpBytes(linkRate, baseRTT), seed: 7}
	s := newSim(cfg)
	b := newTestSender(7)
	f := s.addFlow(b, testMSS, simStart)
	f.appRate = 5 * mbit
	s.run(simStart + Time(10*time.Second))
	t.Logf("app-limited 5 Mbit/s: bw estimate %.2f Mbit/s, pacing %.2f Mbit/s, cwnd %d, mode %s",
		mbps(float64(b.BandwidthEstimate())), mbps(float64(b.PacingRate())), b.GetCongestionWindow(), b.Mode())
	require.Less(t, float64(b.BandwidthEstimate()), 2*5*mbit)
	require.Less(t, b.GetCongestionWindow(), 4*bdpBytes(5*mbit, baseRTT)+64*testMSS)
}

// TestAppLimitedKeepsEstimate: after a bulk phase, a long app-limited phase
// (samples far below the path rate) must not drag the estimate down, because
// app-limited samples are ignored unless they raise it.
func TestAppLimitedKeepsEstimate(t *testing.T) {
	t.Parallel()
	cfg := linkConfig{rate: linkRate, rtt: baseRTT, buffer: 2 * bdpBytes(linkRate, baseRTT), seed: 8}
	s := newSim(cfg)
	b := newTestSender(8)
	f := s.addFlow(b, testMSS, simStart)
	s.run(simStart + Time(5*time.Second))
	before := b.BandwidthEstimate()
	f.appRate = 2 * mbit
	f.appLastAdd = s.now
	s.run(simStart + Time(15*time.Second))
	after := b.BandwidthEstimate()
	t.Logf("bulk estimate %.2f Mbit/s, after 10 s at 2 Mbit/s: %.2f Mbit/s", mbps(float64(before)), mbps(float64(after)))
	require.InDelta(t, linkRate, float64(before), 0.15*linkRate)
	require.Greater(t, float64(after), 0.8*float64(before))
}
