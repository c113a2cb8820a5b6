package bbr2

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// sendAlgorithm restates quic-go's internal congestion.SendAlgorithmWithDebugInfos
// with this package's types (protocol.ByteCount, PacketNumber -> int64,
// monotime.Time -> Time). The adapter converts 1:1, so the Sender must keep
// exactly this method set.
type sendAlgorithm interface {
	TimeUntilSend(bytesInFlight int64) Time
	HasPacingBudget(now Time) bool
	OnPacketSent(sentTime Time, bytesInFlight int64, packetNumber int64, bytes int64, isRetransmittable bool)
	CanSend(bytesInFlight int64) bool
	MaybeExitSlowStart()
	OnPacketAcked(number int64, ackedBytes int64, priorInFlight int64, eventTime Time)
	OnCongestionEvent(number int64, lostBytes int64, priorInFlight int64)
	OnSpuriousLoss(number int64)
	OnRetransmissionTimeout(packetsRetransmitted bool)
	SetMaxDatagramSize(int64)
	InSlowStart() bool
	InRecovery() bool
	GetCongestionWindow() int64
}

var _ sendAlgorithm = (*Sender)(nil)

func TestNewSenderDefaults(t *testing.T) {
	s := NewSender(1200)
	require.Equal(t, int64(32*1200), s.GetCongestionWindow())
	require.Equal(t, "startup", s.Mode())
	require.True(t, s.InSlowStart())
	require.False(t, s.InRecovery())
	require.Zero(t, s.MinRTT())
	require.Zero(t, s.BandwidthEstimate())
	require.Positive(t, s.PacingRate())
	require.True(t, s.CanSend(0))
	require.False(t, s.CanSend(32*1200))
}

func TestModeNames(t *testing.T) {
	want := []string{"startup", "drain", "probe_bw_down", "probe_bw_cruise", "probe_bw_refill", "probe_bw_up", "probe_rtt"}
	for i, w := range want {
		require.Equal(t, w, mode(i).String())
	}
}

// TestPacerMatchesQuicGo pins the token-bucket semantics quic-go's send loop
// relies on: a full burst at start, TimeUntilSend 0 while a datagram's worth
// of budget is left, and otherwise lastSent + max(1 ms, time to accrue the
// missing budget).
func TestPacerMatchesQuicGo(t *testing.T) {
	const mss = 1000
	p := newPacer(mss)
	rate := 1e6 // 1 MB/s: 1 ms per packet, burst = max(2 ms*rate, 10 packets) = 10 packets
	start := Time(time.Second)
	require.Equal(t, int64(10*mss), p.budget(start, rate))
	require.Zero(t, p.timeUntilSend(rate))
	for i := range 10 {
		require.GreaterOrEqual(t, p.budget(start, rate), int64(mss), "packet %d", i)
		p.sent(start, mss, rate)
	}
	require.Less(t, p.budget(start, rate), int64(mss))
	// budget is empty: next packet after 1 ms (time to accrue 1000 bytes)
	require.Equal(t, start+Time(time.Millisecond), p.timeUntilSend(rate))
	// at a high rate the 1 ms minimum applies
	require.Equal(t, start+Time(time.Millisecond), p.timeUntilSend(1e9))
	// at a low rate it takes longer
	require.Equal(t, start+Time(10*time.Millisecond), p.timeUntilSend(1e5))
	// half a packet left: still waits for the other half
	p.budgetAtLastSent = mss / 2
	require.Equal(t, start+Time(time.Millisecond), p.timeUntilSend(rate))
	// budget never exceeds one burst after idling
	require.Equal(t, int64(10*mss), p.budget(start+Time(time.Hour), rate))
	// at high rates the burst is 2 ms worth
	require.Equal(t, int64(2e6), p.budget(start+Time(time.Hour), 1e9))
}

// driveIdeal sends and acknowledges packets for dur on an ideal path: fixed
// RTT, no queue, at most 5 packets per millisecond. It returns the end time.
func driveIdeal(s *Sender, start Time, rtt time.Duration, dur time.Duration, mss int64) Time {
	now := start
	pn := int64(0)
	inflight := int64(0)
	type sent struct {
		pn int64
		at Time
	}
	var q []sent
	for now < start+Time(dur) {
		for i := 0; i < 5 && s.CanSend(inflight); i++ {
			inflight += mss
			s.OnPacketSent(now, inflight, pn, mss, true)
			q = append(q, sent{pn, now})
			pn++
		}
		now += Time(time.Millisecond)
		prior := inflight
		for len(q) > 0 && q[0].at+Time(rtt) <= now {
			inflight -= mss
			s.OnPacketAcked(q[0].pn, mss, prior, now)
			q = q[1:]
		}
	}
	return now
}

func TestRTTAndRoundsFromAcks(t *testing.T) {
	s := newTestSender(1)
	driveIdeal(s, Time(time.Second), 20*time.Millisecond, time.Second, 1200)
	require.InDelta(t, float64(20*time.Millisecond), float64(s.MinRTT()), float64(time.Millisecond))
	require.Greater(t, s.roundCount, int64(3))
	require.Positive(t, s.BandwidthEstimate())
}

// TestECNSignalKeepsPacketState: quic-go reports ECN-CE as a congestion
// event with lostBytes == 0 for the largest acked packet, before that
// packet's OnPacketAcked. It must not be treated as a loss, and the packet's
// sampling state must survive for the ACK.
func TestECNSignalKeepsPacketState(t *testing.T) {
	s := newTestSender(1)
	now := Time(time.Second)
	s.OnPacketSent(now, 1200, 0, 1200, true)
	s.OnCongestionEvent(0, 0, 1200)
	require.Contains(t, s.packets, int64(0))
	require.Zero(t, s.lost)
	require.False(t, s.InRecovery())
	require.True(t, s.ecnInRound)
	s.OnPacketAcked(0, 1200, 1200, now+Time(10*time.Millisecond))
	require.Empty(t, s.packets)
	require.Equal(t, 10*time.Millisecond, s.MinRTT())
}

// TestStartupExitsOnECN: CE signals in consecutive rounds end Startup.
func TestStartupExitsOnECN(t *testing.T) {
	s := newTestSender(1)
	now := Time(time.Second)
	pn := int64(0)
	inflight := int64(0)
	const mss = 1200
	for round := 0; round < 6 && s.InSlowStart(); round++ {
		first := pn
		for i := 0; i < 10; i++ {
			inflight += mss
			s.OnPacketSent(now, inflight, pn, mss, true)
			pn++
		}
		now += Time(10 * time.Millisecond)
		prior := inflight
		s.OnCongestionEvent(pn-1, 0, prior) // CE on every round
		for p := first; p < pn; p++ {
			inflight -= mss
			s.OnPacketAcked(p, mss, prior, now)
		}
	}
	require.False(t, s.InSlowStart(), "Startup must end after consecutive CE rounds")
}

func TestLossAccounting(t *testing.T) {
	s := newTestSender(1)
	now := Time(time.Second)
	for pn := range int64(5) {
		s.OnPacketSent(now, (pn+1)*1200, pn, 1200, true)
	}
	// ACK-only packets consume pacing budget but are not tracked
	s.OnPacketSent(now, 5*1200, 5, 50, false)
	require.Len(t, s.packets, 5)
	require.Equal(t, int64(5*1200), s.inflight)

	s.OnCongestionEvent(1, 1200, 5*1200)
	require.True(t, s.InRecovery())
	require.Equal(t, int64(1200), s.lost)
	require.NotContains(t, s.packets, int64(1))
	for _, pn := range []int64{0, 2, 3} {
		s.OnPacketAcked(pn, 1200, 5*1200, now+Time(30*time.Millisecond))
	}
	require.True(t, s.InRecovery(), "nothing sent after the loss was acked yet")
	s.OnPacketSent(now+Time(31*time.Millisecond), 3*1200, 6, 1200, true)
	s.OnPacketAcked(6, 1200, 3*1200, now+Time(60*time.Millisecond))
	require.False(t, s.InRecovery())
	require.Len(t, s.packets, 1) // packet 4 still outstanding
	s.OnSpuriousLoss(1)
}

// TestPacketStateBounded: packets quic-go never reports (lost MTU probes,
// dropped Initial/Handshake packets) must not accumulate, and an ACK for a
// packet whose state was pruned, or whose number collides with one of
// another packet-number space, must be harmless.
func TestPacketStateBounded(t *testing.T) {
	s := newTestSender(1)
	now := Time(time.Second)
	const mss = 1200
	// 100 packets that are never acknowledged or declared lost
	for pn := int64(0); pn < 100; pn++ {
		s.OnPacketSent(now, mss, 1_000_000+pn, mss, true)
	}
	require.Len(t, s.packets, 100)
	// normal traffic continues for a while
	end := driveIdeal(s, now+Time(time.Millisecond), 20*time.Millisecond, 4*time.Second, mss)
	require.Greater(t, time.Duration(end-now), staleAfter(s.srtt))
	require.Less(t, len(s.packets), 100, "stale entries must be pruned")
	for pn := range s.packets {
		require.Less(t, pn, int64(1_000_000), "the never-reported packets are gone")
	}
	// an ACK for an unknown packet counts as delivered and changes nothing else
	d := s.delivered
	s.OnPacketAcked(1_000_000, mss, 0, end)
	require.Equal(t, d+mss, s.delivered)
	// a colliding packet number with a different size is not mistaken for ours
	s.OnPacketSent(end, mss, 7_000_000, mss, true)
	s.OnPacketAcked(7_000_000, 50, mss, end+Time(time.Millisecond))
	require.Contains(t, s.packets, int64(7_000_000))
}

func TestSetMaxDatagramSize(t *testing.T) {
	s := NewSender(1200)
	s.SetMaxDatagramSize(1452)
	require.Equal(t, int64(1452), s.mss)
	require.Equal(t, int64(1452), s.pacer.maxDatagramSize)
	require.GreaterOrEqual(t, s.GetCongestionWindow(), 4*int64(1452))
}

func TestRetransmissionTimeout(t *testing.T) {
	s := newTestSender(1)
	now := Time(time.Second)
	for pn := range int64(10) {
		s.OnPacketSent(now, (pn+1)*1200, pn, 1200, true)
	}
	before := s.GetCongestionWindow()
	s.OnRetransmissionTimeout(false)
	require.Equal(t, before, s.GetCongestionWindow())
	s.OnRetransmissionTimeout(true)
	require.Equal(t, 4*s.mss, s.GetCongestionWindow())
	require.True(t, s.InRecovery())
	s.OnPacketSent(now+Time(time.Second), 1200, 10, 1200, true)
	s.OnPacketAcked(10, 1200, 1200, now+Time(time.Second+20*time.Millisecond))
	require.False(t, s.InRecovery())
	require.GreaterOrEqual(t, s.GetCongestionWindow(), before, "window restored once recovery ends")
}
