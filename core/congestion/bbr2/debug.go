package bbr2

import (
	"fmt"
	"math"
)

// DebugString summarises the model for diagnostics (bench/cc -diag): mode,
// bandwidth estimates in Mbit/s, inflight bounds and cwnd in packets. Like
// every method it must be called from the goroutine that drives the Sender.
func (s *Sender) DebugString() string {
	mb := func(bps float64) string {
		if math.IsInf(bps, 1) {
			return "-"
		}
		return fmt.Sprintf("%.1f", bps*8/1e6)
	}
	pk := func(b int64) string {
		if b == noBound {
			return "-"
		}
		return fmt.Sprintf("%d", b/s.mss)
	}
	al := ""
	if s.appLimited != 0 {
		al = " app-limited"
	}
	return fmt.Sprintf("%-15s ackphase %d%s maxbw %s bw %s bwlo %s pace %s | inflight %s hi %s lo %s cwnd %s | minrtt %v srtt %v rounds %d cycles %d lost %d/%d KB",
		s.mode, s.ackPhase, al, mb(s.maxBW), mb(s.bw), mb(s.bwLo), mb(s.pacingRate),
		pk(s.inflight), pk(s.inflightHi), pk(s.inflightLo), pk(s.cwnd),
		s.MinRTT(), s.srtt, s.roundCount, s.cycleCount, s.lost>>10, s.delivered>>10)
}
