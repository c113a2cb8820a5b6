package bbr2

import (
	"math"
	"time"
)

// updateOnAck runs the draft's per-ACK model update and then recomputes the
// control parameters (pacing rate, send quantum, cwnd). The order of the
// steps follows BBRUpdateModelAndState / BBRUpdateControlParameters.
func (s *Sender) updateOnAck(rs *rateSample, now Time) {
	s.updateRound(rs)
	s.updateLatestDeliverySignals(rs)
	s.updateCongestionSignals(rs)
	s.updateAckAggregation(rs, now)
	s.checkFullBWReached(rs)
	s.checkStartupDone()
	s.checkDrainDone(now)
	s.updateProbeBWCyclePhase(rs, now)
	s.updateMinRTT(rs, now)
	s.checkProbeRTT(rs, now)
	s.advanceLatestDeliverySignals(rs)
	s.boundBWForModel()

	s.setPacingRate()
	s.setSendQuantum()
	s.setCwnd(rs)
}

// --- round counting -------------------------------------------------------

// updateRound: a packet-timed round trip ends when a packet sent after the
// previous round ended is acknowledged, i.e. when the delivered count at its
// send reaches the marker. Counting by delivered bytes needs no ACK-frame
// boundaries and is immune to packet-number gaps.
func (s *Sender) updateRound(rs *rateSample) {
	s.roundStart = false
	if !rs.known || rs.priorDelivered < s.nextRoundDelivered {
		return
	}
	s.startRound()
	s.roundCount++
	s.roundsSinceBWProbe++
	s.roundStart = true
	s.cwndLimitedPrevRound = s.cwndLimitedThisRound
	s.cwndLimitedThisRound = false
}

func (s *Sender) startRound() { s.nextRoundDelivered = s.delivered }

func (s *Sender) isCwndLimited() bool { return s.cwndLimitedThisRound || s.cwndLimitedPrevRound }

// --- model: bandwidth, latest signals, lower bounds -----------------------

func (s *Sender) updateLatestDeliverySignals(rs *rateSample) {
	s.lossRoundStart = false
	s.bwLatest = max(s.bwLatest, rs.deliveryRate)
	s.inflightLatest = max(s.inflightLatest, rs.delivered)
	if rs.known && rs.priorDelivered >= s.lossRoundDelivered {
		s.lossRoundDelivered = s.delivered
		s.lossRoundStart = true
	}
}

func (s *Sender) advanceLatestDeliverySignals(rs *rateSample) {
	if !s.lossRoundStart {
		return
	}
	s.bwLatest = rs.deliveryRate
	s.inflightLatest = rs.delivered
	s.lossInRound = false
	s.ecnInRound = false
	s.lossEventsInRound = 0
	s.lostBytesInRound = 0
	s.lossRoundDeliveredAt = s.delivered
}

func (s *Sender) updateCongestionSignals(rs *rateSample) {
	s.updateMaxBW(rs)
	if s.lossRoundStart {
		s.adaptLowerBoundsFromCongestion()
	}
}

// updateMaxBW feeds the windowed max filter. App-limited samples are taken
// only if they raise the estimate: a sender that had nothing to send says
// nothing about how much the path could carry.
func (s *Sender) updateMaxBW(rs *rateSample) {
	if rs.deliveryRate <= 0 {
		return
	}
	if rs.deliveryRate >= s.maxBW || !rs.isAppLimited {
		s.maxBWFilter.update(rs.deliveryRate, s.cycleCount)
		s.maxBW = s.maxBWFilter.get(s.cycleCount)
	}
}

// advanceMaxBWFilter moves the filter's window on by one ProbeBW cycle.
func (s *Sender) advanceMaxBWFilter() {
	s.cycleCount++
	if bw := s.maxBWFilter.get(s.cycleCount); bw > 0 {
		s.maxBW = bw
	}
}

// adaptLowerBoundsFromCongestion: once per round with loss (or ECN), outside
// bandwidth probing, lower bw_lo and inflight_lo multiplicatively (beta) but
// never below what the last round actually delivered. This is BBRv2's
// short-term response to congestion caused by other flows.
func (s *Sender) adaptLowerBoundsFromCongestion() {
	if s.isProbingBW() {
		return
	}
	if !s.lossInRound && !s.ecnInRound {
		return
	}
	if math.IsInf(s.bwLo, 1) {
		s.bwLo = s.maxBW
	}
	if s.inflightLo == noBound {
		s.inflightLo = s.cwnd
	}
	s.bwLo = max(s.bwLatest, beta*s.bwLo)
	s.inflightLo = max(s.inflightLatest, int64(beta*float64(s.inflightLo)))
}

func (s *Sender) resetLowerBounds() {
	s.bwLo = math.Inf(1)
	s.inflightLo = noBound
}

func (s *Sender) resetCongestionSignals() {
	s.lossInRound = false
	s.ecnInRound = false
	s.bwLatest = 0
	s.inflightLatest = 0
}

func (s *Sender) boundBWForModel() { s.bw = min(s.maxBW, s.bwLo) }

// updateAckAggregation estimates how much more than the bandwidth estimate
// predicts arrives in ACK bursts (delayed and stretched ACKs; QUIC receivers
// ACK every other packet and delay up to 25 ms). The cwnd gets this much
// extra so that aggregation does not starve the pipe.
func (s *Sender) updateAckAggregation(rs *rateSample, now Time) {
	interval := time.Duration(now - s.extraAckedStart)
	expected := s.bw * interval.Seconds()
	if float64(s.extraAckedDelivered) <= expected {
		s.extraAckedDelivered = 0
		s.extraAckedStart = now
		expected = 0
	}
	s.extraAckedDelivered += rs.newlyAcked
	extra := s.extraAckedDelivered - int64(expected)
	extra = min(max(extra, 0), s.cwnd)
	s.extraAckedFilter.update(extra, s.roundCount)
	s.extraAcked = s.extraAckedFilter.get(s.roundCount)
}

// --- Startup and Drain ----------------------------------------------------

func (s *Sender) enterStartup() {
	s.mode = modeStartup
	s.pacingGain = startupPacingGain
	s.cwndGain = startupCwndGain
}

// checkFullBWReached: the pipe is full when three consecutive rounds, not
// app-limited, failed to grow the estimate by 25%.
func (s *Sender) checkFullBWReached(rs *rateSample) {
	if s.fullBWReached || !s.roundStart || rs.isAppLimited {
		return
	}
	if s.maxBW >= s.fullBW*fullBWThresh {
		s.fullBW = s.maxBW
		s.fullBWCnt = 0
		return
	}
	s.fullBWCnt++
	if s.fullBWCnt >= fullBWCount {
		s.fullBWReached = true
	}
}

func (s *Sender) checkStartupDone() {
	if s.mode != modeStartup {
		return
	}
	s.checkStartupHighLoss()
	if s.fullBWReached {
		s.enterDrain()
	}
}

// checkStartupHighLoss ends Startup early when the round that just ended had
// many separate loss events and a loss rate above 2% (a shallow buffer
// overflowing), or when ECN-CE was signalled in consecutive rounds. inflight_hi
// is then set from what the path demonstrably held, so ProbeBW starts below
// the level that caused the loss.
func (s *Sender) checkStartupHighLoss() {
	if s.fullBWReached || !s.lossRoundStart {
		return
	}
	if s.ecnInRound {
		s.ecnRoundsInStartup++
	} else {
		s.ecnRoundsInStartup = 0
	}
	roundDelivered := s.delivered - s.lossRoundDeliveredAt
	total := roundDelivered + s.lostBytesInRound
	highLoss := s.lossEventsInRound >= startupFullLossCount &&
		float64(s.lostBytesInRound) > lossThresh*float64(total)
	if !highLoss && s.ecnRoundsInStartup < startupFullECNRounds {
		return
	}
	s.fullBWReached = true
	s.inflightHi = max(s.bdpMultiple(s.maxBW, 1.0), s.inflightLatest)
}

func (s *Sender) enterDrain() {
	s.mode = modeDrain
	s.pacingGain = drainPacingGain
	s.cwndGain = startupCwndGain
}

func (s *Sender) checkDrainDone(now Time) {
	if s.mode == modeDrain && s.inflight <= s.inflightFor(s.bw, 1.0) {
		s.enterProbeBW(now)
	}
}

// --- ProbeBW --------------------------------------------------------------

func (s *Sender) isInProbeBWState() bool {
	switch s.mode {
	case modeProbeBWDown, modeProbeBWCruise, modeProbeBWRefill, modeProbeBWUp:
		return true
	}
	return false
}

// isProbingBW: states in which loss is an expected result of probing and
// must not lower the short-term bounds.
func (s *Sender) isProbingBW() bool {
	return s.mode == modeStartup || s.mode == modeProbeBWRefill || s.mode == modeProbeBWUp
}

func (s *Sender) enterProbeBW(now Time) {
	s.cwndGain = probeBWCwndGain
	s.startProbeBWDown(now)
}

func (s *Sender) setPhase(m mode, pacingGain, cwndGain float64, now Time) {
	s.mode = m
	s.pacingGain = pacingGain
	s.cwndGain = cwndGain
}

func (s *Sender) startProbeBWDown(now Time) {
	s.resetCongestionSignals()
	s.probeUpCnt = noProbes
	s.pickProbeWait()
	s.cycleStamp = now
	s.ackPhase = acksProbeStopping
	s.startRound()
	s.setPhase(modeProbeBWDown, probeBWDownPacingGain, probeBWCwndGain, now)
}

func (s *Sender) startProbeBWCruise(now Time) {
	s.setPhase(modeProbeBWCruise, 1.0, probeBWCwndGain, now)
}

// startProbeBWRefill: before probing, drop the short-term lower bounds and
// refill the pipe at 1.0x for one round, so the probe's samples reflect a
// full pipe rather than a pipe still recovering from DOWN.
func (s *Sender) startProbeBWRefill(now Time) {
	s.resetLowerBounds()
	s.bwProbeUpRounds = 0
	s.bwProbeUpAcks = 0
	s.ackPhase = acksRefilling
	s.startRound()
	s.setPhase(modeProbeBWRefill, 1.0, probeBWCwndGain, now)
}

func (s *Sender) startProbeBWUp(now Time) {
	s.ackPhase = acksProbeStarting
	s.startRound()
	s.setPhase(modeProbeBWUp, probeBWUpPacingGain, probeBWUpCwndGain, now)
	s.upFullBW = 0
	s.upFullBWCnt = 0
	s.raiseInflightHiSlope()
}

// pickProbeWait randomises the time to the next probe (2-3 s, or a random
// offset of the Reno-coexistence round count) so that competing BBR flows do
// not probe in lockstep.
func (s *Sender) pickProbeWait() {
	s.roundsSinceBWProbe = int64(s.rng.IntN(2))
	s.bwProbeWait = 2*time.Second + time.Duration(s.rng.Int64N(int64(time.Second)))
}

func (s *Sender) updateProbeBWCyclePhase(rs *rateSample, now Time) {
	if !s.fullBWReached {
		return
	}
	s.adaptUpperBounds(rs, now)
	if !s.isInProbeBWState() {
		return
	}
	switch s.mode {
	case modeProbeBWDown:
		if s.checkTimeToProbeBW(now) {
			return
		}
		if s.isTimeToCruise() {
			s.startProbeBWCruise(now)
		}
	case modeProbeBWCruise:
		s.checkTimeToProbeBW(now)
	case modeProbeBWRefill:
		if s.roundStart {
			s.bwProbeSamples = true
			s.startProbeBWUp(now)
		}
	case modeProbeBWUp:
		if s.isTimeToGoDown(rs) {
			s.startProbeBWDown(now)
		}
	}
}

// checkTimeToProbeBW: probe after the randomised wall-clock wait, or after as
// many rounds as a Reno flow would need to grow its window by one BDP
// (capped), whichever comes first, so BBR is never slower to claim freed
// bandwidth than Reno.
func (s *Sender) checkTimeToProbeBW(now Time) bool {
	if time.Duration(now-s.cycleStamp) > s.bwProbeWait || s.isRenoCoexistenceProbeTime() {
		s.startProbeBWRefill(now)
		return true
	}
	return false
}

func (s *Sender) isRenoCoexistenceProbeTime() bool {
	renoRounds := s.targetInflight() / s.mss
	rounds := min(renoRounds, maxRenoRounds)
	return s.roundsSinceBWProbe >= rounds
}

// isTimeToCruise: DOWN ends once the queue of the last probe is drained and
// inflight is below the headroom under inflight_hi.
func (s *Sender) isTimeToCruise() bool {
	if s.inflight > s.inflightWithHeadroom() {
		return false
	}
	return s.inflight <= s.inflightFor(s.bw, 1.0)
}

// isTimeToGoDown decides when ProbeBW_UP has finished probing (BBRv3).
//
// While the flow is cwnd-limited by inflight_hi, the probe has not yet
// tested anything beyond the old bound, so UP continues and
// probeInflightHiUpward keeps raising inflight_hi (1, 2, 4, ... packets per
// round) until loss says the path is full (handleInflightTooHigh then ends
// UP). This is what lets a flow whose inflight_hi was set low (for instance
// by a Startup that met an incumbent flow's queue) grow to its fair share.
//
// Otherwise UP ends when the delivery rate has stopped growing: three rounds
// without 25% growth, the same plateau test Startup uses. Probing for
// several rounds (instead of stopping as soon as 1.25 BDP is in flight, as
// BBRv2 did) measurably improves convergence between competing flows in the
// simulator (the smaller flow gains relatively more from each probe), at
// the price of a somewhat larger transient queue during UP, which DOWN then
// drains.
func (s *Sender) isTimeToGoDown(rs *rateSample) bool {
	if s.inflightHi != noBound && s.isCwndLimited() && s.cwnd >= s.inflightHi {
		s.upFullBW = rs.deliveryRate
		s.upFullBWCnt = 0
		return false
	}
	if rs.isAppLimited {
		return false
	}
	if rs.deliveryRate >= s.upFullBW*fullBWThresh {
		s.upFullBW = rs.deliveryRate
		s.upFullBWCnt = 0
		return false
	}
	if s.roundStart {
		s.upFullBWCnt++
	}
	return s.upFullBWCnt >= fullBWCount
}

// adaptUpperBounds maintains inflight_hi, BBR's long-term safe upper bound on
// inflight: cut on excessive loss during probing, raised when probing
// succeeds without loss.
func (s *Sender) adaptUpperBounds(rs *rateSample, now Time) {
	if s.ackPhase == acksProbeStarting && s.roundStart {
		s.ackPhase = acksProbeFeedback
	}
	if s.ackPhase == acksProbeStopping && s.roundStart {
		// ACKs for data sent while probing have all arrived: the cycle is
		// complete, so advance the max filter and stop attributing losses
		// to the probe.
		if s.isInProbeBWState() && !rs.isAppLimited {
			s.advanceMaxBWFilter()
		}
		s.bwProbeSamples = false
		s.ackPhase = acksInit
	}
	if s.checkInflightTooHigh(rs) {
		return
	}
	if s.inflightHi == noBound {
		return
	}
	if rs.txInFlight > s.inflightHi {
		s.inflightHi = rs.txInFlight
	}
	if s.mode == modeProbeBWUp {
		s.probeInflightHiUpward(rs)
	}
}

func (s *Sender) checkInflightTooHigh(rs *rateSample) bool {
	if !s.isInflightTooHigh(rs) {
		return false
	}
	if s.bwProbeSamples {
		s.handleInflightTooHigh(rs)
	}
	return true
}

// isInflightTooHigh: more than lossThresh of the flight the sample covers
// was lost.
func (s *Sender) isInflightTooHigh(rs *rateSample) bool {
	if !rs.known || rs.txInFlight <= 0 {
		return false
	}
	return float64(rs.lost) > float64(rs.txInFlight)*lossThresh
}

func (s *Sender) handleInflightTooHigh(rs *rateSample) {
	s.bwProbeSamples = false
	if !rs.isAppLimited {
		s.inflightHi = max(rs.txInFlight, int64(float64(s.targetInflight())*beta))
	}
	if s.mode == modeProbeBWUp {
		s.startProbeBWDown(s.now)
	}
}

// probeInflightHiUpward grows inflight_hi while UP is limited by it, with a
// growth that doubles every round (1, 2, 4, ... packets per round), so a
// large increase in available bandwidth is found in a logarithmic number of
// rounds.
func (s *Sender) probeInflightHiUpward(rs *rateSample) {
	if !s.isCwndLimited() || s.cwnd < s.inflightHi {
		return
	}
	s.bwProbeUpAcks += rs.newlyAcked
	if s.probeUpCnt != noProbes {
		step := s.probeUpCnt * s.mss
		if s.bwProbeUpAcks >= step {
			delta := s.bwProbeUpAcks / step
			s.bwProbeUpAcks -= delta * step
			s.inflightHi += delta * s.mss
		}
	}
	if s.roundStart {
		s.raiseInflightHiSlope()
	}
}

func (s *Sender) raiseInflightHiSlope() {
	growth := int64(1) << s.bwProbeUpRounds
	s.bwProbeUpRounds = min(s.bwProbeUpRounds+1, 30)
	s.probeUpCnt = max(s.cwnd/s.mss/growth, 1)
}

// --- ProbeRTT and min RTT -------------------------------------------------

// updateMinRTT keeps two filters: probeRTTMinDelay over the ProbeRTT
// interval (5 s), which decides when to drain the queue to re-measure, and
// minRTT over 10 s, used for the BDP.
func (s *Sender) updateMinRTT(rs *rateSample, now Time) {
	s.probeRTTExpired = time.Duration(now-s.probeRTTMinStamp) > probeRTTInterval
	if rs.rtt >= 0 && (rs.rtt < s.probeRTTMinDelay || s.probeRTTExpired) {
		s.probeRTTMinDelay = rs.rtt
		s.probeRTTMinStamp = now
	}
	minRTTExpired := time.Duration(now-s.minRTTStamp) > minRTTFilterLen
	if s.probeRTTMinDelay < s.minRTT || minRTTExpired {
		first := s.minRTT == infRTT
		s.minRTT = s.probeRTTMinDelay
		s.minRTTStamp = s.probeRTTMinStamp
		if first && s.minRTT > 0 && s.maxBW == 0 {
			s.initPacingRateFromRTT()
		}
	}
}

// initPacingRateFromRTT: the draft initialises pacing from SRTT; before the
// first RTT sample the Sender assumed quic-go's default initial RTT.
func (s *Sender) initPacingRateFromRTT() {
	if s.pacingInitializedFromRTT {
		return
	}
	s.pacingInitializedFromRTT = true
	rate := startupPacingGain * float64(s.cwnd) / s.minRTT.Seconds()
	s.pacingRate = max(s.pacingRate, rate)
}

func (s *Sender) checkProbeRTT(rs *rateSample, now Time) {
	if s.mode != modeProbeRTT && s.probeRTTExpired && !s.idleRestart {
		s.enterProbeRTT(now)
		s.saveCwnd()
		s.probeRTTDoneStamp = 0
		s.ackPhase = acksProbeStopping
		s.startRound()
	}
	if s.mode == modeProbeRTT {
		s.handleProbeRTT(now)
	}
	if rs.delivered > 0 {
		s.idleRestart = false
	}
}

func (s *Sender) enterProbeRTT(now Time) {
	s.probeRTTCount++
	s.setPhase(modeProbeRTT, 1.0, probeRTTCwndGain, now)
}

// handleProbeRTT: hold inflight at the ProbeRTT cwnd for 200 ms and at least
// one round, so the queue drains and the min RTT is re-measured. The
// connection is marked app-limited meanwhile: low rate samples from ProbeRTT
// must not lower the bandwidth estimate.
func (s *Sender) handleProbeRTT(now Time) {
	s.markAppLimited()
	if s.probeRTTDoneStamp == 0 && s.inflight <= s.probeRTTCwnd() {
		s.probeRTTDoneStamp = now + Time(probeRTTDuration)
		s.probeRTTRoundDone = false
		s.startRound()
	} else if s.probeRTTDoneStamp != 0 {
		if s.roundStart {
			s.probeRTTRoundDone = true
		}
		if s.probeRTTRoundDone {
			s.checkProbeRTTDone(now)
		}
	}
}

func (s *Sender) checkProbeRTTDone(now Time) {
	if s.probeRTTDoneStamp != 0 && now > s.probeRTTDoneStamp {
		s.probeRTTMinStamp = now
		s.restoreCwnd()
		s.exitProbeRTT(now)
	}
}

func (s *Sender) exitProbeRTT(now Time) {
	s.resetLowerBounds()
	if s.fullBWReached {
		s.startProbeBWDown(now)
		s.startProbeBWCruise(now)
	} else {
		s.enterStartup()
	}
}

func (s *Sender) probeRTTCwnd() int64 {
	return max(s.bdpMultiple(s.bw, probeRTTCwndGain), s.minPipeCwnd())
}

func (s *Sender) saveCwnd() {
	if !s.inRecovery && s.mode != modeProbeRTT {
		s.priorCwnd = s.cwnd
	} else {
		s.priorCwnd = max(s.priorCwnd, s.cwnd)
	}
}

func (s *Sender) restoreCwnd() { s.cwnd = max(s.cwnd, s.priorCwnd) }

// --- control parameters ---------------------------------------------------

// bdpMultiple returns gain * BDP in bytes; before there is a model it
// returns the initial window (draft).
func (s *Sender) bdpMultiple(bw float64, gain float64) int64 {
	if s.minRTT == infRTT || bw <= 0 {
		return s.initialCwnd
	}
	return int64(gain * bw * s.minRTT.Seconds())
}

// quantizationBudget adds allowances for the send quantum (three quanta can
// be sitting in offload/pacer queues) and keeps at least the minimum pipe.
// UP gets two extra packets so the probe can actually raise inflight.
func (s *Sender) quantizationBudget(inflight int64) int64 {
	inflight = max(inflight, 3*s.sendQuantum)
	inflight = max(inflight, s.minPipeCwnd())
	if s.mode == modeProbeBWUp {
		inflight += 2 * s.mss
	}
	return inflight
}

func (s *Sender) inflightFor(bw float64, gain float64) int64 {
	return s.quantizationBudget(s.bdpMultiple(bw, gain))
}

func (s *Sender) targetInflight() int64 { return min(s.bdpMultiple(s.bw, 1.0), s.cwnd) }

// inflightWithHeadroom leaves 15% of inflight_hi unused while cruising, so
// that new or probing flows find free capacity.
func (s *Sender) inflightWithHeadroom() int64 {
	if s.inflightHi == noBound {
		return noBound
	}
	h := max(s.mss, int64(headroom*float64(s.inflightHi)))
	return max(s.inflightHi-h, s.minPipeCwnd())
}

func (s *Sender) setPacingRateWithGain(gain float64) {
	if s.bw <= 0 {
		return
	}
	rate := gain * s.bw * (1 - pacingMargin)
	// In Startup the rate only ever rises, so a noisy low sample cannot
	// slow the exponential search.
	if s.fullBWReached || rate > s.pacingRate {
		s.pacingRate = rate
	}
}

func (s *Sender) setPacingRate() { s.setPacingRateWithGain(s.pacingGain) }

// setSendQuantum: about 1 ms worth of data, between 2 packets and 64 KB.
func (s *Sender) setSendQuantum() {
	q := int64(s.pacingRate * 0.001)
	s.sendQuantum = min(max(q, 2*s.mss), maxSendQuantum)
}

func (s *Sender) setCwnd(rs *rateSample) {
	bdp := s.bdpMultiple(s.bw, s.cwndGain)
	s.maxInflight = s.quantizationBudget(bdp + s.extraAcked)
	if s.fullBWReached {
		s.cwnd = min(s.cwnd+rs.newlyAcked, s.maxInflight)
	} else if s.cwnd < s.maxInflight || s.delivered < s.initialCwnd {
		s.cwnd += rs.newlyAcked
	}
	s.cwnd = max(s.cwnd, s.minPipeCwnd())
	if s.mode == modeProbeRTT {
		s.cwnd = min(s.cwnd, s.probeRTTCwnd())
	}
	s.boundCwndForModel()
}

// boundCwndForModel applies inflight_hi (with headroom while cruising or in
// ProbeRTT) and inflight_lo.
func (s *Sender) boundCwndForModel() {
	limit := noBound
	switch s.mode {
	case modeProbeBWDown, modeProbeBWRefill, modeProbeBWUp:
		limit = s.inflightHi
	case modeProbeBWCruise, modeProbeRTT:
		limit = s.inflightWithHeadroom()
	}
	limit = min(limit, s.inflightLo)
	limit = max(limit, s.minPipeCwnd())
	s.cwnd = min(s.cwnd, limit, maxCwndPackets*s.mss)
}
