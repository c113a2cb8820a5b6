package bbr2

import "time"

// renoSender is a small NewReno (AIMD) model used as the baseline in the
// simulator: slow start, +1 packet per window in congestion avoidance, one
// multiplicative decrease per loss episode, paced like quic-go's cubic/reno
// sender (2x cwnd/srtt in slow start, 1.25x after). Its decrease factor is
// 0.7, quic-go's renoBeta, so the comparison is against quic-go's default
// behaviour rather than a harsher textbook Reno.
type renoSender struct {
	mss                  int64
	cwnd                 int64
	ssthresh             int64
	largestSent          int64
	largestSentAtCutback int64
	ackedInCA            int64
	pacer                *pacer
	srtt                 *time.Duration
}

const renoBeta = 0.7

func newRenoSender(mss int64, srtt *time.Duration) *renoSender {
	return &renoSender{
		mss:                  mss,
		cwnd:                 initialCwndPackets * mss,
		ssthresh:             maxCwndPackets * mss,
		largestSentAtCutback: -1,
		pacer:                newPacer(mss),
		srtt:                 srtt,
	}
}

func (r *renoSender) pacingRate() float64 {
	srtt := *r.srtt
	if srtt == 0 {
		srtt = defaultInitialRTT
	}
	bw := float64(r.cwnd) / srtt.Seconds()
	if r.cwnd < r.ssthresh {
		return 2 * bw
	}
	return 1.25 * bw
}

func (r *renoSender) TimeUntilSend(int64) Time { return r.pacer.timeUntilSend(r.pacingRate()) }
func (r *renoSender) HasPacingBudget(now Time) bool {
	return r.pacer.budget(now, r.pacingRate()) >= r.mss
}

func (r *renoSender) OnPacketSent(t Time, _ int64, pn int64, bytes int64, retransmittable bool) {
	r.pacer.sent(t, bytes, r.pacingRate())
	if retransmittable {
		r.largestSent = pn
	}
}

func (r *renoSender) CanSend(bytesInFlight int64) bool { return bytesInFlight < r.cwnd }
func (r *renoSender) MaybeExitSlowStart()              {}
func (r *renoSender) GetCongestionWindow() int64       { return r.cwnd }

func (r *renoSender) OnPacketAcked(pn int64, acked int64, _ int64, _ Time) {
	if pn <= r.largestSentAtCutback {
		return // in recovery
	}
	if r.cwnd < r.ssthresh {
		r.cwnd += acked
	} else {
		r.ackedInCA += acked
		if r.ackedInCA >= r.cwnd {
			r.ackedInCA -= r.cwnd
			r.cwnd += r.mss
		}
	}
	r.cwnd = min(r.cwnd, maxCwndPackets*r.mss)
}

func (r *renoSender) OnCongestionEvent(pn int64, _ int64, _ int64) {
	if pn <= r.largestSentAtCutback {
		return
	}
	r.largestSentAtCutback = r.largestSent
	r.cwnd = max(int64(float64(r.cwnd)*renoBeta), 2*r.mss)
	r.ssthresh = r.cwnd
	r.ackedInCA = 0
}
