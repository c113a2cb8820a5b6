// Package bbr2 is a BBRv2 congestion controller written for aranya-quic from
// the IETF BBR draft (draft-cardwell-iccrg-bbr-congestion-control, the
// BBRv2/v3 algorithm it describes) and the published BBRv2 descriptions.
//
// The Sender mirrors the method set of quic-go's internal
// congestion.SendAlgorithmWithDebugInfos so that a thin adapter can install
// it into quic-go's sent-packet handler. quic-go ships only NewReno; BBR is
// the default here because it keeps throughput on paths with random loss and
// keeps queues short on paths with deep buffers, both of which matter for the
// peer-to-peer links aranya-quic runs over.
//
// How quic-go drives a controller, and what this package assumes about it:
//
//   - OnPacketSent is called for every packet, ACK-only ones included
//     (isRetransmittable false; they only consume pacing budget). For
//     ack-eliciting packets bytesInFlight already INCLUDES the packet being
//     sent: quic-go adds the size to its bytesInFlight before the call
//     (sent_packet_handler.go, SentPacket).
//   - For one ACK frame quic-go first reports losses (OnCongestionEvent, one
//     call per lost packet), then calls OnPacketAcked once per newly acked
//     ack-eliciting packet in packet-number order. priorInFlight is the same
//     value (bytes in flight before the frame was processed) in all of them.
//   - OnCongestionEvent with lostBytes == 0 is quic-go's ECN-CE signal (the
//     ECN tracker saw the CE count grow), not a loss.
//   - The controller sees no ACK-frame boundaries and no packet-number
//     spaces, so it keeps its own per-packet state keyed by packet number and
//     derives rate samples, RTT samples and round trips from it.
//
// The Sender is not safe for concurrent use; quic-go calls it from the
// connection's run loop only.
package bbr2

import (
	"math"
	"math/rand/v2"
	"time"
)

// Time is a monotonic instant in nanoseconds, on the same epoch as quic-go's
// internal monotime.Time, so the adapter converts it with a plain cast. Zero
// means "unset" (quic-go never produces a zero instant).
type Time int64

// Constants from the BBR draft; the names follow the draft's.
const (
	// startupPacingGain (4*ln 2) lets Startup double the delivery rate every
	// round trip while the queue it creates stays small.
	startupPacingGain = 2.77
	// startupCwndGain leaves room for the ACKs of one round to arrive while
	// the pacing rate doubles.
	startupCwndGain = 2.0
	// drainPacingGain is about the inverse of the Startup gain: it drains the
	// queue Startup built in about one round trip.
	drainPacingGain = 0.35
	// ProbeBW phase gains (BBRv3 values): DOWN leaves headroom and drains the
	// queue of the previous probe, UP probes for 25% more bandwidth.
	probeBWDownPacingGain = 0.9
	probeBWUpPacingGain   = 1.25
	probeBWCwndGain       = 2.0
	probeBWUpCwndGain     = 2.25
	// probeRTTCwndGain: ProbeRTT keeps half a BDP in flight, enough to keep
	// the link busy-ish while the queue empties.
	probeRTTCwndGain = 0.5
	// lossThresh is the highest loss rate per flight that BBR treats as
	// compatible with its current inflight; above it inflight_hi is cut.
	lossThresh = 0.02
	// beta is the multiplicative decrease applied to the lower bounds per
	// round with loss; 0.7 matches CUBIC's so BBR is not more sensitive to
	// loss than CUBIC.
	beta = 0.7
	// headroom is the fraction of inflight_hi left free while cruising so
	// that other flows can grab bandwidth.
	headroom = 0.15
	// minPipeCwndPackets keeps enough in flight for delayed/stretched ACKs to
	// keep the ACK clock running.
	minPipeCwndPackets = 4
	// fullBWThresh / fullBWCount: Startup ends when the bandwidth estimate
	// has not grown by 25% in 3 consecutive non-app-limited rounds.
	fullBWThresh = 1.25
	fullBWCount  = 3
	// startupFullLossCount: Startup also ends when a round saw at least this
	// many discontiguous loss events and a loss rate above lossThresh.
	startupFullLossCount = 6
	// startupFullECNRounds: Startup ends after this many consecutive rounds
	// with ECN-CE signals. quic-go reports CE per ACK frame, not per packet,
	// so the draft's CE ratio cannot be computed; consecutive marked rounds
	// are the closest signal available.
	startupFullECNRounds = 2
	probeRTTDuration     = 200 * time.Millisecond
	probeRTTInterval     = 5 * time.Second
	minRTTFilterLen      = 10 * time.Second
	// pacingMarginPercent paces 1% below the estimate so a persistent queue
	// cannot build from estimation noise.
	pacingMargin = 0.01
	// maxBWFilterCycles: the max filter remembers the last two ProbeBW
	// cycles, so one cycle without a successful probe does not forget the
	// bandwidth.
	maxBWFilterCycles   = 2
	extraAckedFilterLen = 10
	// maxRenoRounds caps the Reno-coexistence probe interval.
	maxRenoRounds = 63
	// initialCwndPackets matches quic-go's NewReno initial window.
	initialCwndPackets = 32
	// maxCwndPackets matches quic-go's protocol.MaxCongestionWindowPackets;
	// quic-go stops tracking more packets than twice that anyway.
	maxCwndPackets = 10000
	// defaultInitialRTT matches quic-go's; it sets the initial pacing rate
	// before any RTT sample exists so the first flight is not one burst.
	defaultInitialRTT = 100 * time.Millisecond
	// maxSendQuantum caps the send quantum used for the offload budget.
	maxSendQuantum = 64 * 1024
)

const (
	noBound  = int64(math.MaxInt64)
	infRTT   = time.Duration(math.MaxInt64)
	noProbes = int64(math.MaxInt64)
)

type mode int

const (
	modeStartup mode = iota
	modeDrain
	modeProbeBWDown
	modeProbeBWCruise
	modeProbeBWRefill
	modeProbeBWUp
	modeProbeRTT
)

func (m mode) String() string {
	switch m {
	case modeStartup:
		return "startup"
	case modeDrain:
		return "drain"
	case modeProbeBWDown:
		return "probe_bw_down"
	case modeProbeBWCruise:
		return "probe_bw_cruise"
	case modeProbeBWRefill:
		return "probe_bw_refill"
	case modeProbeBWUp:
		return "probe_bw_up"
	case modeProbeRTT:
		return "probe_rtt"
	}
	return "unknown"
}

// ackPhase tracks whether the ACKs now arriving are for data sent while
// probing for bandwidth, so loss signals are attributed to the right phase.
type ackPhase int

const (
	acksInit ackPhase = iota
	acksRefilling
	acksProbeStarting
	acksProbeFeedback
	acksProbeStopping
)

// Sender is a BBRv2 congestion controller with a token-bucket pacer.
type Sender struct {
	mss         int64
	initialCwnd int64
	cwnd        int64
	priorCwnd   int64
	maxInflight int64
	sendQuantum int64

	pacingRate float64 // bytes per second
	pacingGain float64
	cwndGain   float64
	pacer      *pacer
	rng        *rand.Rand

	// Delivery-rate sampler state (draft section "Delivery Rate Samples").
	packets       map[int64]packetState
	delivered     int64
	lost          int64
	deliveredTime Time
	firstSentTime Time
	// appLimited is the end of the current application-limited bubble in
	// delivered bytes, or 0 when not app-limited.
	appLimited int64
	// sendOpportunity: quic-go was last told it may send (window room and
	// pacing budget: HasPacingBudget returned true, which quic-go asks only
	// after CanSend did) and no ack-eliciting packet has been sent since.
	// It is the evidence that an idle sender had nothing to send.
	sendOpportunity bool
	inflight        int64
	now             Time
	started         bool
	lastPrune       Time
	srtt            time.Duration

	largestSentPN int64

	// ACK-frame detection: quic-go hands over one acked packet at a time;
	// a change of (eventTime, priorInFlight) marks the start of a new frame.
	lastAckTime          Time
	lastAckPriorInFlight int64

	// Round counting by delivered bytes.
	nextRoundDelivered int64
	roundCount         int64
	roundStart         bool
	roundsSinceBWProbe int64

	cwndLimitedThisRound bool
	cwndLimitedPrevRound bool

	// Model.
	maxBWFilter    roundMaxFilter[float64]
	cycleCount     int64
	maxBW          float64
	bw             float64
	bwLo           float64 // +Inf when unset
	inflightHi     int64   // noBound when unset
	inflightLo     int64   // noBound when unset
	bwLatest       float64
	inflightLatest int64

	lossRoundDelivered int64
	lossRoundStart     bool
	lossInRound        bool
	ecnInRound         bool
	// Per-loss-round accounting for the Startup exit on high loss.
	lossEventsInRound        int
	lostBytesInRound         int64
	lossRoundDeliveredAt     int64
	lastLostPN               int64
	ecnRoundsInStartup       int
	fullBW                   float64
	fullBWCnt                int
	fullBWReached            bool
	extraAckedFilter         roundMaxFilter[int64]
	extraAcked               int64
	extraAckedStart          Time
	extraAckedDelivered      int64
	minRTT                   time.Duration
	minRTTStamp              Time
	probeRTTMinDelay         time.Duration
	probeRTTMinStamp         Time
	probeRTTExpired          bool
	probeRTTDoneStamp        Time
	probeRTTRoundDone        bool
	idleRestart              bool
	pacingInitializedFromRTT bool

	// ProbeBW.
	mode            mode
	ackPhase        ackPhase
	cycleStamp      Time
	bwProbeWait     time.Duration
	bwProbeSamples  bool
	bwProbeUpRounds int
	bwProbeUpAcks   int64
	probeUpCnt      int64
	upFullBW        float64
	upFullBWCnt     int

	// Recovery (reporting only, plus cwnd restore after an RTO).
	inRecovery    bool
	recoveryEndPN int64
	rtoCwndSaved  bool

	// Counters for stats and tests.
	probeRTTCount  int
	spuriousLosses int
}

// NewSender returns a BBRv2 sender in Startup with an initial window of 32
// datagrams (quic-go's NewReno default, so both start equally fast).
func NewSender(initialMaxDatagramSize int64) *Sender {
	if initialMaxDatagramSize <= 0 {
		initialMaxDatagramSize = 1200
	}
	s := &Sender{
		mss:              initialMaxDatagramSize,
		initialCwnd:      initialCwndPackets * initialMaxDatagramSize,
		pacer:            newPacer(initialMaxDatagramSize),
		rng:              rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())),
		packets:          make(map[int64]packetState),
		maxBWFilter:      newRoundMaxFilter[float64](maxBWFilterCycles),
		extraAckedFilter: newRoundMaxFilter[int64](extraAckedFilterLen),
		bwLo:             math.Inf(1),
		inflightHi:       noBound,
		inflightLo:       noBound,
		minRTT:           infRTT,
		probeRTTMinDelay: infRTT,
		probeUpCnt:       noProbes,
		lastLostPN:       -2,
		largestSentPN:    -1,
		recoveryEndPN:    -1,
	}
	s.cwnd = s.initialCwnd
	s.pacingRate = startupPacingGain * float64(s.initialCwnd) / defaultInitialRTT.Seconds()
	s.sendQuantum = 2 * s.mss
	s.enterStartup()
	return s
}

// advanceTime records the latest instant seen. The draft initialises its
// filter timestamps with Now() at connection start; the Sender has no clock
// of its own, so it does that at the first call that carries a time.
func (s *Sender) advanceTime(t Time) {
	if !s.started {
		s.started = true
		s.minRTTStamp = t
		s.probeRTTMinStamp = t
		s.extraAckedStart = t
		s.cycleStamp = t
		s.lastPrune = t
	}
	if t > s.now {
		s.now = t
	}
}

func (s *Sender) minPipeCwnd() int64 { return minPipeCwndPackets * s.mss }

// TimeUntilSend returns the earliest time the pacer allows the next packet,
// or 0 if it may be sent now. bytesInFlight is unused: the congestion window
// is checked separately by CanSend, exactly as in quic-go.
func (s *Sender) TimeUntilSend(bytesInFlight int64) Time {
	return s.pacer.timeUntilSend(s.pacingRate)
}

// HasPacingBudget reports whether the pacer allows a full-sized packet now.
func (s *Sender) HasPacingBudget(now Time) bool {
	ok := s.pacer.budget(now, s.pacingRate) >= s.mss
	if ok {
		s.sendOpportunity = true
	}
	return ok
}

// CanSend reports whether the congestion window has room. A refusal also
// records that the flow is cwnd-limited, which ProbeBW_UP needs to know
// before it raises inflight_hi.
func (s *Sender) CanSend(bytesInFlight int64) bool {
	ok := bytesInFlight < s.cwnd
	if !ok {
		s.cwndLimitedThisRound = true
	}
	return ok
}

// MaybeExitSlowStart is a no-op: BBR leaves Startup on its own signals
// (bandwidth plateau, loss, ECN), not on quic-go's HyStart RTT heuristic.
func (s *Sender) MaybeExitSlowStart() {}

// OnPacketSent records per-packet sampling state. bytesInFlight includes this
// packet when isRetransmittable (quic-go's semantics). Non-retransmittable
// (ACK-only) packets only consume pacing budget: they are not in flight and
// are never reported acked or lost.
func (s *Sender) OnPacketSent(sentTime Time, bytesInFlight int64, packetNumber int64, bytes int64, isRetransmittable bool) {
	s.advanceTime(sentTime)
	if isRetransmittable && bytesInFlight-bytes <= 0 {
		// Nothing was in flight: the sender was idle. Handle the restart
		// before the pacer is charged, so a ProbeBW restart paces at 1.0x.
		s.handleRestartFromIdle(sentTime)
	}
	s.pacer.sent(sentTime, bytes, s.pacingRate)
	if !isRetransmittable {
		return
	}
	s.sendOpportunity = false
	if bytesInFlight-bytes <= 0 {
		// Start a fresh sampling interval: time spent idle must not count.
		s.firstSentTime = sentTime
		s.deliveredTime = sentTime
	}
	s.packets[packetNumber] = packetState{
		sentTime:      sentTime,
		delivered:     s.delivered,
		deliveredTime: s.deliveredTime,
		firstSentTime: s.firstSentTime,
		txInFlight:    bytesInFlight,
		lost:          s.lost,
		size:          bytes,
		isAppLimited:  s.appLimited != 0,
	}
	// quic-go's value is authoritative; resynchronising here also corrects
	// for packets quic-go stopped counting without telling us (lost MTU
	// probes, dropped Initial/Handshake packets).
	s.inflight = bytesInFlight
	if packetNumber > s.largestSentPN {
		s.largestSentPN = packetNumber
	}
	if bytesInFlight >= s.cwnd {
		s.cwndLimitedThisRound = true
	}
	s.maybePrune(sentTime)
}

// handleRestartFromIdle: when sending resumes with nothing in flight the
// sender was application-limited; mark the bubble so the slow samples it
// produces do not lower the model, and (draft) pace at the estimated rate
// rather than a probing gain.
func (s *Sender) handleRestartFromIdle(now Time) {
	if s.delivered == 0 {
		return // connection start, not an idle restart
	}
	s.markAppLimited()
	s.idleRestart = true
	s.extraAckedStart = now
	s.extraAckedDelivered = 0
	if s.isInProbeBWState() {
		s.setPacingRateWithGain(1.0)
	} else if s.mode == modeProbeRTT {
		s.checkProbeRTTDone(now)
	}
}

func (s *Sender) markAppLimited() {
	s.appLimited = max(s.delivered+s.inflight, 1)
}

// checkAppLimitedAtAck detects that the application, not the network, was
// limiting the sender: when an ACK frame arrives while the window had room
// and the pacer's bucket is full, the sender could have sent and did not.
// quic-go has no "out of data" callback, so this is how the draft's
// app-limited marking is obtained. A cwnd-limited flow has bytes in flight at
// the window, and a pacing-limited one has an empty bucket, so neither trips
// this.
//
// The window and the bucket alone are not enough: quic-go processes every
// queued packet before it sends again, so when a cwnd-limited flow (whose
// bucket filled while the window was closed) gets several ACK frames in one
// batch, the first opens the window and the next ones would see room and a
// full bucket although quic-go never had the chance to send. Marking those
// made a bulk flow app-limited for an RTT after most congestion-limited
// stretches, so the max-bandwidth filter ignored its lower samples and never
// advanced its ProbeBW cycle: an incumbent flow kept the whole link's
// bandwidth as its estimate and held a newcomer to about a third. So the
// sender also needs an unused send opportunity (see HasPacingBudget).
func (s *Sender) checkAppLimitedAtAck(priorInFlight int64, now Time) {
	if !s.sendOpportunity {
		return
	}
	if priorInFlight+s.mss > s.cwnd {
		return
	}
	if s.pacer.budget(now, s.pacingRate) < s.pacer.maxBurstSize(s.pacingRate)-s.mss {
		return
	}
	s.markAppLimited()
}

// OnPacketAcked processes the ACK of one packet: it produces a rate sample
// and runs the BBR model and state machine on it.
func (s *Sender) OnPacketAcked(packetNumber int64, ackedBytes int64, priorInFlight int64, eventTime Time) {
	s.advanceTime(eventTime)
	if eventTime != s.lastAckTime || priorInFlight != s.lastAckPriorInFlight {
		s.lastAckTime = eventTime
		s.lastAckPriorInFlight = priorInFlight
		s.checkAppLimitedAtAck(priorInFlight, eventTime)
	}
	s.inflight = max(0, s.inflight-ackedBytes)
	if s.inRecovery && packetNumber > s.recoveryEndPN {
		s.inRecovery = false
		if s.rtoCwndSaved {
			s.rtoCwndSaved = false
			s.restoreCwnd()
		}
	}
	rs := s.sampleOnAck(packetNumber, ackedBytes, eventTime)
	s.updateOnAck(&rs, eventTime)
	s.maybePrune(eventTime)
}

// sampleOnAck generates the delivery-rate sample for one acknowledged packet.
func (s *Sender) sampleOnAck(pn, ackedBytes int64, now Time) rateSample {
	p, ok := s.packets[pn]
	if !ok || p.size != ackedBytes {
		// Unknown packet (state pruned, or a number of another packet-
		// number space): count the delivery, derive nothing from it.
		s.delivered += ackedBytes
		s.deliveredTime = now
		return rateSample{newlyAcked: ackedBytes, rtt: -1}
	}
	delete(s.packets, pn)
	s.delivered += p.size
	s.deliveredTime = now
	rs := rateSample{
		known:          true,
		newlyAcked:     p.size,
		priorDelivered: p.delivered,
		isAppLimited:   p.isAppLimited,
		txInFlight:     p.txInFlight,
		lost:           s.lost - p.lost,
		delivered:      s.delivered - p.delivered,
		rtt:            time.Duration(now - p.sentTime),
	}
	sendElapsed := time.Duration(p.sentTime - p.firstSentTime)
	ackElapsed := time.Duration(now - p.deliveredTime)
	s.firstSentTime = p.sentTime
	// The longer of the two phases bounds the rate: ACK compression can make
	// the ACK phase look short, sending bursts the send phase.
	interval := max(sendElapsed, ackElapsed)
	minRTT := min(s.minRTT, rs.rtt)
	// An interval shorter than min RTT cannot be a real measurement of the
	// bottleneck (draft): it is an artifact of ACK aggregation.
	if interval > 0 && interval >= minRTT {
		rs.deliveryRate = float64(rs.delivered) / interval.Seconds()
	}
	if rs.rtt > 0 {
		if s.srtt == 0 {
			s.srtt = rs.rtt
		} else {
			s.srtt = (7*s.srtt + rs.rtt) / 8
		}
	}
	if s.appLimited != 0 && s.delivered > s.appLimited {
		s.appLimited = 0
	}
	return rs
}

// OnCongestionEvent handles one lost packet, or (lostBytes == 0) quic-go's
// ECN-CE signal.
func (s *Sender) OnCongestionEvent(packetNumber int64, lostBytes int64, priorInFlight int64) {
	if lostBytes == 0 {
		// ECN-CE: the packet number is the largest acked, which is still
		// waiting for its OnPacketAcked, so its state must stay.
		s.ecnInRound = true
		return
	}
	s.lost += lostBytes
	s.inflight = max(0, s.inflight-lostBytes)
	s.lossInRound = true
	s.lostBytesInRound += lostBytes
	if packetNumber != s.lastLostPN+1 {
		s.lossEventsInRound++
	}
	s.lastLostPN = packetNumber
	if !s.inRecovery || packetNumber > s.recoveryEndPN {
		s.inRecovery = true
		s.recoveryEndPN = s.largestSentPN
	}
	p, ok := s.packets[packetNumber]
	if !ok || p.size != lostBytes {
		return
	}
	delete(s.packets, packetNumber)
	s.handleLostPacket(p)
}

// handleLostPacket checks, at the moment of each loss, whether the flight the
// lost packet belonged to exceeded the loss threshold. Reacting per loss
// (rather than at the next ACK) stops a bandwidth probe as soon as it causes
// excessive loss.
func (s *Sender) handleLostPacket(p packetState) {
	if !s.bwProbeSamples {
		return
	}
	rs := rateSample{
		known:        true,
		txInFlight:   p.txInFlight,
		lost:         s.lost - p.lost,
		isAppLimited: p.isAppLimited,
	}
	if s.isInflightTooHigh(&rs) {
		rs.txInFlight = s.inflightAtLoss(&rs, p)
		s.handleInflightTooHigh(&rs)
		s.boundCwndForModel()
	}
}

// inflightAtLoss estimates the inflight at which the loss rate crossed
// lossThresh, assuming losses grew linearly with inflight over the flight.
func (s *Sender) inflightAtLoss(rs *rateSample, p packetState) int64 {
	inflightPrev := float64(rs.txInFlight - p.size)
	lostPrev := float64(rs.lost - p.size)
	lostPrefix := (lossThresh*inflightPrev - lostPrev) / (1 - lossThresh)
	return max(int64(inflightPrev+lostPrefix), s.minPipeCwnd())
}

// OnSpuriousLoss is informational. BBR does not cut its window on individual
// losses, so there is no reduction to undo; the 2% loss threshold already
// tolerates occasional reordering.
func (s *Sender) OnSpuriousLoss(packetNumber int64) {
	s.spuriousLosses++
}

// OnRetransmissionTimeout follows the draft's RTO handling: save the window,
// fall back to the minimum pipe, and restore the saved window once a packet
// sent after the timeout is acknowledged. (quic-go v0.65 does not call it.)
func (s *Sender) OnRetransmissionTimeout(packetsRetransmitted bool) {
	if !packetsRetransmitted {
		return
	}
	s.saveCwnd()
	s.rtoCwndSaved = true
	s.inRecovery = true
	s.recoveryEndPN = s.largestSentPN
	s.cwnd = s.minPipeCwnd()
}

// SetMaxDatagramSize updates the datagram size after path MTU discovery.
func (s *Sender) SetMaxDatagramSize(n int64) {
	if n <= 0 {
		return
	}
	s.mss = n
	s.pacer.maxDatagramSize = n
	s.cwnd = max(s.cwnd, s.minPipeCwnd())
}

// InSlowStart reports whether the sender is in Startup.
func (s *Sender) InSlowStart() bool { return s.mode == modeStartup }

// InRecovery reports whether a loss happened and no packet sent after it has
// been acknowledged yet.
func (s *Sender) InRecovery() bool { return s.inRecovery }

// GetCongestionWindow returns the congestion window in bytes.
func (s *Sender) GetCongestionWindow() int64 { return s.cwnd }

// PacingRate returns the current pacing rate in bytes per second.
func (s *Sender) PacingRate() int64 { return int64(s.pacingRate) }

// BandwidthEstimate returns the windowed maximum delivery rate in bytes per
// second.
func (s *Sender) BandwidthEstimate() int64 { return int64(s.maxBW) }

// MinRTT returns the current min RTT estimate, or 0 before the first sample.
func (s *Sender) MinRTT() time.Duration {
	if s.minRTT == infRTT {
		return 0
	}
	return s.minRTT
}

// Mode returns the state machine's current state.
func (s *Sender) Mode() string { return s.mode.String() }

// maybePrune drops state of packets quic-go will never report (see
// staleAfter). It scans at most about once per second, so its cost is
// amortised.
func (s *Sender) maybePrune(now Time) {
	if time.Duration(now-s.lastPrune) < time.Second {
		return
	}
	s.lastPrune = now
	cutoff := now - Time(staleAfter(s.srtt))
	for pn, p := range s.packets {
		if p.sentTime < cutoff {
			delete(s.packets, pn)
		}
	}
}
