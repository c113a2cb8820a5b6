package bbr2

import (
	"math"
	"time"
)

// maxBurstPackets is the number of full-sized datagrams the pacer lets the
// sender emit back to back after an idle period. quic-go's own pacer uses the
// same value; keeping it identical means switching between NewReno and BBRv2
// does not change the burstiness the rest of the stack (socket buffers, GSO
// batches) has to absorb.
const maxBurstPackets = 10

// minPacingDelay is the smallest wait the pacer asks for. Timers in the Go
// runtime and in quic-go's run loop are not precise below about a
// millisecond, so rather than arming sub-millisecond timers the pacer lets the
// budget for one millisecond accumulate and sends it as a small burst.
const minPacingDelay = time.Millisecond

// timerGranularity mirrors quic-go's protocol.TimerGranularity; the burst
// allowance covers one pacing delay plus one timer granularity of lateness.
const timerGranularity = time.Millisecond

// pacer is a token bucket: tokens (bytes) accrue at the pacing rate, up to one
// maximum burst, and every sent packet consumes its size. Its semantics match
// quic-go's internal pacer exactly so that quic-go's send loop (which asks
// HasPacingBudget and TimeUntilSend) behaves the same with either controller.
type pacer struct {
	budgetAtLastSent int64
	maxDatagramSize  int64
	lastSentTime     Time
}

func newPacer(maxDatagramSize int64) *pacer {
	return &pacer{maxDatagramSize: maxDatagramSize}
}

// sent consumes the budget for a packet of size bytes sent at t.
func (p *pacer) sent(t Time, size int64, rate float64) {
	budget := p.budget(t, rate)
	if size >= budget {
		p.budgetAtLastSent = 0
	} else {
		p.budgetAtLastSent = budget - size
	}
	p.lastSentTime = t
}

// budget is the number of bytes that may be sent at now.
func (p *pacer) budget(now Time, rate float64) int64 {
	maxBurst := p.maxBurstSize(rate)
	if p.lastSentTime == 0 {
		return maxBurst
	}
	var added int64
	if now > p.lastSentTime {
		added = scaled(time.Duration(now-p.lastSentTime), rate)
	}
	budget := p.budgetAtLastSent + added
	if budget < p.budgetAtLastSent { // overflow
		budget = math.MaxInt64
	}
	return min(maxBurst, budget)
}

// maxBurstSize is the bucket depth: what accrues during one pacing delay plus
// one timer granularity, but never less than maxBurstPackets datagrams.
func (p *pacer) maxBurstSize(rate float64) int64 {
	return max(scaled(minPacingDelay+timerGranularity, rate), maxBurstPackets*p.maxDatagramSize)
}

// timeUntilSend returns when the budget will next cover a full datagram, or 0
// if it already does (or nothing was ever sent).
func (p *pacer) timeUntilSend(rate float64) Time {
	if p.lastSentTime == 0 || p.budgetAtLastSent >= p.maxDatagramSize {
		return 0
	}
	if rate <= 0 {
		// No rate known: do not stall the connection on a division by zero;
		// the congestion window still limits what is in flight.
		return p.lastSentTime + Time(minPacingDelay)
	}
	missing := float64(p.maxDatagramSize - p.budgetAtLastSent)
	d := time.Duration(math.Ceil(missing * 1e9 / rate))
	return p.lastSentTime + Time(max(minPacingDelay, d))
}

// scaled returns the bytes that accrue during d at rate (bytes per second).
func scaled(d time.Duration, rate float64) int64 {
	if rate <= 0 || d <= 0 {
		return 0
	}
	v := rate * d.Seconds()
	if v >= math.MaxInt64/2 {
		return math.MaxInt64 / 2
	}
	return int64(v)
}
