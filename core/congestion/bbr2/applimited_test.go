package bbr2

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestAppLimitedNeedsUnusedSendOpportunity: quic-go handles every queued
// packet before it sends again. A cwnd-limited flow whose pacer bucket filled
// while the window was closed gets two ACK frames in one batch: the first
// opens the window, the second sees room and a full bucket, but quic-go
// never had a chance to send, so the flow is not app-limited. Only when
// quic-go was told it may send (HasPacingBudget true) and sent nothing is it.
func TestAppLimitedNeedsUnusedSendOpportunity(t *testing.T) {
	const mss = 1200
	s := NewSender(mss)
	now := Time(time.Second)
	// Fill the window: 32 packets back to back, the last one at the window.
	var inflight int64
	for pn := int64(0); pn < 32; pn++ {
		require.True(t, s.CanSend(inflight))
		inflight += mss
		s.OnPacketSent(now, inflight, pn, mss, true)
	}
	require.False(t, s.CanSend(inflight), "window full")
	// 40 ms later (the bucket is full again) two ACK frames arrive in one
	// batch, with no send in between.
	now += Time(40 * time.Millisecond)
	prior := inflight
	s.OnPacketAcked(0, mss, prior, now)
	s.OnPacketAcked(1, mss, prior, now)
	inflight -= 2 * mss
	prior = inflight
	s.OnPacketAcked(2, mss, prior, now+1)
	inflight -= mss
	require.Zero(t, s.appLimited, "ACK frames of one batch do not make a cwnd-limited flow app-limited")

	// Now quic-go gets its send opportunity and has nothing to send.
	require.True(t, s.CanSend(inflight))
	require.True(t, s.HasPacingBudget(now+2))
	s.OnPacketAcked(3, mss, inflight, now+Time(2*time.Millisecond))
	require.NotZero(t, s.appLimited, "an unused send opportunity with room in the window is app-limited")

	// A send ends the opportunity.
	inflight -= mss
	inflight += mss
	s.OnPacketSent(now+Time(3*time.Millisecond), inflight, 32, mss, true)
	require.False(t, s.sendOpportunity)
}
