package bbr2

import (
	"container/heap"
	"math/rand/v2"
	"time"
)

// This file is a deterministic discrete-event simulator of one bottleneck
// link: a drop-tail FIFO of a given size drained at a given rate, a one-way
// propagation delay each way, and optional random loss from a seeded
// generator. Senders are driven the way quic-go's sent-packet handler drives
// its congestion controller (see drive order in flow.onAck), so the tests
// exercise the same call pattern the adapter will produce.

// ccUnderTest is the part of the controller API the simulated connection
// uses. Both Sender and the NewReno model implement it.
type ccUnderTest interface {
	TimeUntilSend(bytesInFlight int64) Time
	HasPacingBudget(now Time) bool
	OnPacketSent(sentTime Time, bytesInFlight int64, packetNumber int64, bytes int64, isRetransmittable bool)
	CanSend(bytesInFlight int64) bool
	MaybeExitSlowStart()
	OnPacketAcked(packetNumber int64, ackedBytes int64, priorInFlight int64, eventTime Time)
	OnCongestionEvent(packetNumber int64, lostBytes int64, priorInFlight int64)
	GetCongestionWindow() int64
}

// simStart is a non-zero epoch: quic-go never hands out instant 0 and the
// pacer treats 0 as "never sent".
const simStart = Time(time.Second)

type event struct {
	at  Time
	seq int64
	fn  func()
}

type eventQueue []*event

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(*event)) }
func (q *eventQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

type sim struct {
	now    Time
	seq    int64
	events eventQueue
	link   *link
	flows  []*flow
}

func (s *sim) at(t Time, fn func()) {
	if t < s.now {
		t = s.now
	}
	s.seq++
	heap.Push(&s.events, &event{at: t, seq: s.seq, fn: fn})
}

func (s *sim) run(until Time) {
	for len(s.events) > 0 {
		e := s.events[0]
		if e.at > until {
			break
		}
		heap.Pop(&s.events)
		s.now = e.at
		e.fn()
	}
	s.now = until
}

// linkConfig describes the bottleneck.
type linkConfig struct {
	rate     float64       // bytes per second
	rtt      time.Duration // base round-trip propagation delay
	buffer   int64         // drop-tail buffer in bytes
	lossRate float64       // random loss probability per packet
	seed     uint64
}

type link struct {
	sim       *sim
	rate      float64
	oneWay    time.Duration
	buffer    int64
	lossRate  float64
	rng       *rand.Rand
	busyUntil Time

	// statistics, collected from statsFrom on
	statsFrom     Time
	queueDelaySum time.Duration
	queueSamples  int64
	maxQueueDelay time.Duration
	tailDrops     int64
	randomDrops   int64
	forwarded     int64
}

type simPacket struct {
	flow     *flow
	pn       int64
	size     int64
	sentTime Time
}

// enqueue offers a packet to the bottleneck at the current time.
func (l *link) enqueue(p simPacket) {
	now := l.sim.now
	stats := now >= l.statsFrom
	if l.lossRate > 0 && l.rng.Float64() < l.lossRate {
		if stats {
			l.randomDrops++
		}
		return
	}
	start := max(now, l.busyUntil)
	queued := int64(float64(start-now) / 1e9 * l.rate)
	if queued+p.size > l.buffer {
		if stats {
			l.tailDrops++
		}
		return
	}
	depart := start + Time(float64(p.size)/l.rate*1e9)
	l.busyUntil = depart
	if stats {
		qd := time.Duration(start - now)
		l.queueDelaySum += qd
		l.queueSamples++
		l.maxQueueDelay = max(l.maxQueueDelay, qd)
		l.forwarded++
	}
	l.sim.at(depart+Time(l.oneWay), func() { p.flow.onArrival(p) })
}

func (l *link) meanQueueDelay() time.Duration {
	if l.queueSamples == 0 {
		return 0
	}
	return l.queueDelaySum / time.Duration(l.queueSamples)
}

// sentPkt is the simulated connection's own record of a packet, like quic-go's
// sent packet history.
type sentPkt struct {
	pn       int64
	size     int64
	sentTime Time
	acked    bool
	lost     bool
}

// flow is one simulated QUIC connection: sender-side loss detection and RTT
// estimation like quic-go's, plus the receiver that generates ACKs.
type flow struct {
	sim  *sim
	link *link
	cc   ccUnderTest
	mss  int64

	// application: appRate == 0 means bulk (always data to send); otherwise
	// the application writes appRate bytes per second.
	appRate    float64
	appBudget  float64
	appLastAdd Time
	stopAt     Time

	nextPN        int64
	history       []*sentPkt // index pn-historyBase
	historyBase   int64
	bytesInFlight int64
	largestAcked  int64
	latestRTT     time.Duration
	srtt          time.Duration
	rttVar        time.Duration
	lossTimer     Time
	lossTimerSet  bool
	ptoCount      int
	ptoArmed      bool
	ptoBase       Time // last ACK, or first send after idle
	sendTimerAt   Time
	sendTimerSet  bool

	// receiver
	rcvPending []int64
	ackTimer   bool

	// statistics
	statsFrom    Time
	rcvBytes     int64 // bytes delivered to the receiver since statsFrom
	ackedBytes   int64
	lostPackets  int64
	sentPackets  int64
	maxStateSize int
}

const (
	packetThreshold = 3
	ackEvery        = 2
	maxAckDelay     = 5 * time.Millisecond
)

func newSim(cfg linkConfig) *sim {
	s := &sim{now: simStart}
	s.link = &link{
		sim:      s,
		rate:     cfg.rate,
		oneWay:   cfg.rtt / 2,
		buffer:   cfg.buffer,
		lossRate: cfg.lossRate,
		rng:      rand.New(rand.NewPCG(cfg.seed, cfg.seed^0x9e3779b97f4a7c15)),
	}
	return s
}

// addFlow attaches a sender starting at start.
func (s *sim) addFlow(cc ccUnderTest, mss int64, start Time) *flow {
	f := &flow{sim: s, link: s.link, cc: cc, mss: mss, largestAcked: -1, appLastAdd: start}
	s.flows = append(s.flows, f)
	s.at(start, f.trySend)
	return f
}

func (f *flow) hasData() bool {
	if f.stopAt != 0 && f.sim.now >= f.stopAt {
		return false
	}
	if f.appRate == 0 {
		return true
	}
	now := f.sim.now
	f.appBudget += f.appRate * float64(now-f.appLastAdd) / 1e9
	f.appLastAdd = now
	// the application keeps at most a few packets buffered
	f.appBudget = min(f.appBudget, float64(4*f.mss))
	return f.appBudget >= float64(f.mss)
}

// trySend sends while the window and the pacer allow, like quic-go's send
// loop: CanSend first, then HasPacingBudget, else wait for TimeUntilSend;
// only then does it look for data (quic-go's SendMode comes before packing),
// so an application-limited flow leaves an unused send opportunity.
func (f *flow) trySend() {
	now := f.sim.now
	if f.sendTimerSet && f.sendTimerAt <= now {
		f.sendTimerSet = false
	}
	for {
		if !f.cc.CanSend(f.bytesInFlight) {
			return // an ACK will wake us
		}
		if !f.cc.HasPacingBudget(now) {
			t := f.cc.TimeUntilSend(f.bytesInFlight)
			if t <= now {
				t = now + Time(time.Microsecond)
			}
			f.scheduleSend(t)
			return
		}
		if !f.hasData() {
			if f.appRate > 0 && (f.stopAt == 0 || now < f.stopAt) {
				// wake when the application has written a packet
				need := (float64(f.mss) - f.appBudget) / f.appRate * 1e9
				f.scheduleSend(now + Time(need) + 1)
			}
			return
		}
		f.sendPacket(now)
	}
}

func (f *flow) scheduleSend(t Time) {
	if f.sendTimerSet && f.sendTimerAt <= t {
		return
	}
	f.sendTimerSet = true
	f.sendTimerAt = t
	f.sim.at(t, f.trySend)
}

func (f *flow) sendPacket(now Time) {
	if f.appRate > 0 {
		f.appBudget -= float64(f.mss)
	}
	pn := f.nextPN
	f.nextPN++
	p := &sentPkt{pn: pn, size: f.mss, sentTime: now}
	if len(f.history) == 0 {
		f.historyBase = pn
	}
	f.history = append(f.history, p)
	if f.bytesInFlight == 0 {
		f.ptoBase = now
	}
	f.bytesInFlight += f.mss
	f.sentPackets++
	// quic-go passes bytes in flight including the packet just sent.
	f.cc.OnPacketSent(now, f.bytesInFlight, pn, f.mss, true)
	if s, ok := f.cc.(*Sender); ok {
		f.maxStateSize = max(f.maxStateSize, len(s.packets))
	}
	f.link.enqueue(simPacket{flow: f, pn: pn, size: f.mss, sentTime: now})
	f.armPTO()
}

// onArrival is the receiver: ACK every second packet, immediately on a gap,
// otherwise after maxAckDelay.
func (f *flow) onArrival(p simPacket) {
	now := f.sim.now
	if now >= f.statsFrom {
		f.rcvBytes += p.size
	}
	gap := len(f.rcvPending) > 0 && p.pn != f.rcvPending[len(f.rcvPending)-1]+1
	f.rcvPending = append(f.rcvPending, p.pn)
	if gap || len(f.rcvPending) >= ackEvery {
		f.sendAck()
		return
	}
	if !f.ackTimer {
		f.ackTimer = true
		f.sim.at(now+Time(maxAckDelay), func() {
			f.ackTimer = false
			if len(f.rcvPending) > 0 {
				f.sendAck()
			}
		})
	}
}

func (f *flow) sendAck() {
	acked := f.rcvPending
	f.rcvPending = nil
	f.sim.at(f.sim.now+Time(f.link.oneWay), func() { f.onAck(acked) })
}

func (f *flow) pkt(pn int64) *sentPkt {
	i := pn - f.historyBase
	if i < 0 || i >= int64(len(f.history)) {
		return nil
	}
	return f.history[i]
}

// onAck processes one ACK frame in quic-go's order: remove acked packets,
// update the RTT, MaybeExitSlowStart, detect and report losses (with the
// prior bytes in flight), then report each acked packet in packet-number
// order.
func (f *flow) onAck(pns []int64) {
	now := f.sim.now
	prior := f.bytesInFlight
	var acked []*sentPkt
	for _, pn := range pns {
		p := f.pkt(pn)
		if p == nil || p.acked || p.lost {
			continue
		}
		p.acked = true
		f.bytesInFlight -= p.size
		acked = append(acked, p)
		f.largestAcked = max(f.largestAcked, pn)
	}
	if len(acked) == 0 {
		return
	}
	f.ptoBase = now
	f.ptoCount = 0
	last := acked[len(acked)-1]
	if last.pn == f.largestAcked {
		f.updateRTT(time.Duration(now - last.sentTime))
		f.cc.MaybeExitSlowStart()
	}
	f.detectLosses(prior)
	for _, p := range acked {
		if now >= f.statsFrom {
			f.ackedBytes += p.size
		}
		f.cc.OnPacketAcked(p.pn, p.size, prior, now)
	}
	f.compact()
	f.armPTO()
	f.trySend()
}

func (f *flow) updateRTT(r time.Duration) {
	f.latestRTT = r
	if f.srtt == 0 {
		f.srtt = r
		f.rttVar = r / 2
		return
	}
	d := f.srtt - r
	if d < 0 {
		d = -d
	}
	f.rttVar = (3*f.rttVar + d) / 4
	f.srtt = (7*f.srtt + r) / 8
}

// detectLosses applies quic-go's rules: a packet below the largest acked is
// lost if it is 3 packets older or was sent more than 9/8 RTT ago.
func (f *flow) detectLosses(prior int64) {
	now := f.sim.now
	lossDelay := max(max(f.latestRTT, f.srtt)*9/8, time.Millisecond)
	f.lossTimerSet = false
	for _, p := range f.history {
		if p.pn > f.largestAcked {
			break
		}
		if p.acked || p.lost {
			continue
		}
		if p.sentTime <= now-Time(lossDelay) || f.largestAcked-p.pn >= packetThreshold {
			p.lost = true
			f.bytesInFlight -= p.size
			if now >= f.statsFrom {
				f.lostPackets++
			}
			f.cc.OnCongestionEvent(p.pn, p.size, prior)
			continue
		}
		if !f.lossTimerSet {
			f.lossTimerSet = true
			f.lossTimer = p.sentTime + Time(lossDelay)
			t := f.lossTimer
			f.sim.at(t, func() {
				if f.lossTimerSet && f.lossTimer == t {
					f.detectLosses(f.bytesInFlight)
					f.compact()
					f.trySend()
				}
			})
		}
	}
}

func (f *flow) compact() {
	i := 0
	for i < len(f.history) && (f.history[i].acked || f.history[i].lost) {
		i++
	}
	if i > 0 {
		f.history = f.history[i:]
		f.historyBase += int64(i)
		if len(f.history) == 0 {
			f.history = nil
		}
	}
}

// armPTO keeps one probe-timeout timer pending: if nothing is acknowledged
// for a PTO, two packets are sent regardless of the congestion window, as
// quic-go does, so a flight lost in its entirety cannot deadlock the
// connection.
func (f *flow) armPTO() {
	if f.ptoArmed || f.bytesInFlight <= 0 {
		return
	}
	f.ptoArmed = true
	f.sim.at(f.ptoBase+Time(f.ptoDuration()), f.onPTO)
}

func (f *flow) ptoDuration() time.Duration {
	srtt := f.srtt
	if srtt == 0 {
		srtt = 100 * time.Millisecond
	}
	return (srtt + max(4*f.rttVar, time.Millisecond) + 25*time.Millisecond) << f.ptoCount
}

func (f *flow) onPTO() {
	f.ptoArmed = false
	if f.bytesInFlight <= 0 || (f.stopAt != 0 && f.sim.now >= f.stopAt) {
		return
	}
	if deadline := f.ptoBase + Time(f.ptoDuration()); f.sim.now < deadline {
		f.ptoArmed = true
		f.sim.at(deadline, f.onPTO)
		return
	}
	f.ptoCount = min(f.ptoCount+1, 6)
	f.ptoBase = f.sim.now
	for range 2 {
		f.sendPacket(f.sim.now)
	}
	f.armPTO()
}

// goodput returns the bytes per second delivered to the receiver since
// statsFrom.
func (f *flow) goodput(end Time) float64 {
	return float64(f.rcvBytes) / (float64(end-f.statsFrom) / 1e9)
}
