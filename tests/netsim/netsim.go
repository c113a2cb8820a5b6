// Package netsim is a lossy UDP proxy for tests. There is no netem on the
// test machines, so this puts the faults in user space: it sits between
// endpoints on loopback and drops, delays, reorders, duplicates and
// rate-limits datagrams with a seeded random source, and it can black-hole
// traffic (a partition) for a while or until healed.
//
// # Symmetric mapping
//
// QUIC endpoints key connections by the address they see, and aranya-quic
// expects a peer's packets to come from the address the peer listens on.
// So the proxy gives every endpoint its own proxy port: Add(realA) returns
// P_A. An endpoint B that sends to P_A has its datagram forwarded to realA
// from B's own proxy port P_B, so A sees the packet coming from P_B and its
// reply to P_B is forwarded to realB from P_A. Each endpoint knows every
// other one only by its proxy address, and addresses stay consistent in
// both directions:
//
//	A (realA) --> P_B  ==forward from P_A==>  B (realB)
//	A (realA) <== forward from P_B ==  P_A <-- B (realB)
//
// Datagrams from a source that was never added are dropped (and counted).
package netsim

import (
	"container/heap"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Link describes the impairments applied to every datagram. The zero
// value forwards everything at once.
type Link struct {
	// Loss is the probability (0..1) that a datagram is dropped.
	Loss float64
	// Delay is added to every datagram; Jitter adds a uniform random
	// extra delay in [0, Jitter), which also reorders datagrams.
	Delay, Jitter time.Duration
	// Reorder is the probability that a datagram is held back an extra
	// ReorderDelay (default 10 ms), so later datagrams overtake it.
	Reorder      float64
	ReorderDelay time.Duration
	// Duplicate is the probability that a datagram is delivered twice.
	Duplicate float64
	// Bandwidth limits each direction of each pair of endpoints, in bytes
	// per second (0: unlimited). Datagrams wait in a FIFO of at most
	// QueueBytes (default 64 KiB); one that does not fit is dropped, like
	// a router's tail drop.
	Bandwidth  int
	QueueBytes int
	// SharedBottleneck makes every datagram toward one endpoint, whoever
	// sent it, share one Bandwidth limit and one queue: a single bottleneck
	// in front of that endpoint (its access link), so flows from several
	// senders to it compete. False (the default) gives each ordered pair of
	// endpoints its own limit and queue.
	SharedBottleneck bool
}

// Stats counts what happened to datagrams.
type Stats struct {
	Received     uint64 // datagrams read from proxy ports
	Delivered    uint64 // datagrams written to their destination (duplicates count)
	Lost         uint64 // dropped by Loss
	QueueDropped uint64 // dropped because the bandwidth queue was full
	Partitioned  uint64 // dropped by a partition
	Unknown      uint64 // dropped because the source was never added
	Duplicated   uint64 // extra copies made
	Reordered    uint64 // datagrams held back by Reorder
}

// Proxy forwards datagrams between the endpoints added to it.
type Proxy struct {
	mu       sync.Mutex
	rng      *rand.Rand
	link     Link
	byReal   map[netip.AddrPort]*port // real endpoint address -> its port
	byProxy  map[netip.AddrPort]*port // proxy address -> port
	ports    []*port
	links    map[[2]*port]*pipe
	parted   bool           // everything black-holed
	isolated map[*port]bool // traffic to or from these black-holed
	cut      map[[2]*port]bool
	stats    Stats
	closed   bool

	sched    schedule
	wake     chan struct{}
	done     chan struct{}
	wg       sync.WaitGroup
	healTime *time.Timer
}

// port is one endpoint's proxy socket.
type port struct {
	real  netip.AddrPort
	addr  netip.AddrPort
	conn  *net.UDPConn
	proxy *Proxy
}

// pipe is the bandwidth state of one direction between two ports, or of
// everything toward one port with Link.SharedBottleneck.
type pipe struct {
	busyUntil time.Time // when the link finishes sending what is queued
	queued    []queued  // departure times and sizes still in the FIFO
	backlog   int       // sum of the sizes in queued
}

type queued struct {
	depart time.Time
	size   int
}

// New makes a proxy whose random choices come from seed.
func New(seed uint64, link Link) *Proxy {
	p := &Proxy{
		rng:      rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		link:     link,
		byReal:   make(map[netip.AddrPort]*port),
		byProxy:  make(map[netip.AddrPort]*port),
		links:    make(map[[2]*port]*pipe),
		isolated: make(map[*port]bool),
		cut:      make(map[[2]*port]bool),
		wake:     make(chan struct{}, 1),
		done:     make(chan struct{}),
	}
	p.wg.Add(1)
	go p.deliverLoop()
	return p
}

// ErrClosed is returned by Add after Close.
var ErrClosed = errors.New("netsim: proxy closed")

// Add registers an endpoint listening on real and returns the proxy
// address others must use for it. Adding the same address again returns
// the same proxy address (an endpoint restarted on its port keeps it).
func (p *Proxy) Add(real netip.AddrPort) (netip.AddrPort, error) {
	real = netip.AddrPortFrom(real.Addr().Unmap(), real.Port())
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return netip.AddrPort{}, ErrClosed
	}
	if pt := p.byReal[real]; pt != nil {
		p.mu.Unlock()
		return pt.addr, nil
	}
	p.mu.Unlock()
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(real.Addr(), 0)))
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("netsim: listen: %w", err)
	}
	_ = conn.SetReadBuffer(4 << 20)
	_ = conn.SetWriteBuffer(4 << 20)
	la := conn.LocalAddr().(*net.UDPAddr).AddrPort()
	pt := &port{real: real, addr: netip.AddrPortFrom(la.Addr().Unmap(), la.Port()), conn: conn, proxy: p}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		conn.Close()
		return netip.AddrPort{}, ErrClosed
	}
	if old := p.byReal[real]; old != nil { // lost a race with another Add
		p.mu.Unlock()
		conn.Close()
		return old.addr, nil
	}
	p.byReal[real] = pt
	p.byProxy[pt.addr] = pt
	p.ports = append(p.ports, pt)
	p.wg.Add(1)
	p.mu.Unlock()
	go pt.readLoop()
	return pt.addr, nil
}

// MustAdd is Add that panics on error, for tests.
func (p *Proxy) MustAdd(real netip.AddrPort) netip.AddrPort {
	a, err := p.Add(real)
	if err != nil {
		panic(err)
	}
	return a
}

// SetLink replaces the impairments for datagrams read from now on.
func (p *Proxy) SetLink(l Link) {
	p.mu.Lock()
	p.link = l
	p.mu.Unlock()
}

// Partition black-holes all traffic until Heal.
func (p *Proxy) Partition() {
	p.mu.Lock()
	p.parted = true
	p.stopHealTimerLocked()
	p.mu.Unlock()
}

// PartitionFor black-holes all traffic for d, then heals by itself.
func (p *Proxy) PartitionFor(d time.Duration) {
	p.mu.Lock()
	p.parted = true
	p.stopHealTimerLocked()
	p.healTime = time.AfterFunc(d, p.Heal)
	p.mu.Unlock()
}

func (p *Proxy) stopHealTimerLocked() {
	if p.healTime != nil {
		p.healTime.Stop()
		p.healTime = nil
	}
}

// Isolate black-holes everything to and from the endpoint whose real
// address is real, until Heal.
func (p *Proxy) Isolate(real netip.AddrPort) {
	p.mu.Lock()
	if pt := p.byReal[real]; pt != nil {
		p.isolated[pt] = true
	}
	p.mu.Unlock()
}

// Cut black-holes traffic between the two endpoints (by real address), in
// both directions, until Heal.
func (p *Proxy) Cut(a, b netip.AddrPort) {
	p.mu.Lock()
	pa, pb := p.byReal[a], p.byReal[b]
	if pa != nil && pb != nil {
		p.cut[[2]*port{pa, pb}] = true
		p.cut[[2]*port{pb, pa}] = true
	}
	p.mu.Unlock()
}

// Heal ends every partition, isolation and cut. Datagrams dropped while
// partitioned stay lost.
func (p *Proxy) Heal() {
	p.mu.Lock()
	p.parted = false
	p.stopHealTimerLocked()
	clear(p.isolated)
	clear(p.cut)
	p.mu.Unlock()
}

// Stats returns the counters.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

// Close stops forwarding and closes every proxy port. Datagrams still
// scheduled are dropped.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.stopHealTimerLocked()
	ports := p.ports
	p.mu.Unlock()
	close(p.done)
	for _, pt := range ports {
		pt.conn.Close()
	}
	p.wg.Wait()
	return nil
}

func (pt *port) readLoop() {
	p := pt.proxy
	defer p.wg.Done()
	buf := make([]byte, 65536)
	for {
		n, src, err := pt.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			select {
			case <-p.done:
				return
			default:
				continue
			}
		}
		src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
		p.route(pt, src, append([]byte(nil), buf[:n]...))
	}
}

// route applies the impairments to one datagram that arrived on dst's
// proxy port from src, and schedules what survives.
func (p *Proxy) route(dst *port, src netip.AddrPort, data []byte) {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.stats.Received++
	from := p.byReal[src]
	if from == nil {
		p.stats.Unknown++
		return
	}
	if p.parted || p.isolated[from] || p.isolated[dst] || p.cut[[2]*port{from, dst}] {
		p.stats.Partitioned++
		return
	}
	l := p.link
	if l.Loss > 0 && p.rng.Float64() < l.Loss {
		p.stats.Lost++
		return
	}
	depart := now
	if l.Bandwidth > 0 {
		limit := l.QueueBytes
		if limit <= 0 {
			limit = 64 << 10
		}
		key := [2]*port{from, dst}
		if l.SharedBottleneck {
			key = [2]*port{nil, dst}
		}
		pp := p.links[key]
		if pp == nil {
			pp = &pipe{}
			p.links[key] = pp
		}
		// Forget what has left the queue by now.
		k := 0
		for k < len(pp.queued) && !pp.queued[k].depart.After(now) {
			pp.backlog -= pp.queued[k].size
			k++
		}
		pp.queued = pp.queued[k:]
		if pp.backlog+len(data) > limit {
			p.stats.QueueDropped++
			return
		}
		start := pp.busyUntil
		if start.Before(now) {
			start = now
		}
		depart = start.Add(time.Duration(float64(len(data)) / float64(l.Bandwidth) * float64(time.Second)))
		pp.busyUntil = depart
		pp.queued = append(pp.queued, queued{depart: depart, size: len(data)})
		pp.backlog += len(data)
	}
	copies := 1
	if l.Duplicate > 0 && p.rng.Float64() < l.Duplicate {
		copies = 2
		p.stats.Duplicated++
	}
	for i := 0; i < copies; i++ {
		at := depart.Add(l.Delay)
		if l.Jitter > 0 {
			at = at.Add(time.Duration(p.rng.Int64N(int64(l.Jitter))))
		}
		if l.Reorder > 0 && p.rng.Float64() < l.Reorder {
			d := l.ReorderDelay
			if d <= 0 {
				d = 10 * time.Millisecond
			}
			at = at.Add(d)
			p.stats.Reordered++
		}
		p.sched.seq++
		heap.Push(&p.sched, &event{at: at, seq: p.sched.seq, via: from, to: dst.real, data: data})
	}
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// deliverLoop writes scheduled datagrams when their time comes.
func (p *Proxy) deliverLoop() {
	defer p.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		p.mu.Lock()
		var due []*event
		now := time.Now()
		for p.sched.Len() > 0 && !p.sched.events[0].at.After(now) {
			due = append(due, heap.Pop(&p.sched).(*event))
		}
		next := time.Duration(-1)
		if p.sched.Len() > 0 {
			next = p.sched.events[0].at.Sub(now)
		}
		p.mu.Unlock()
		for _, ev := range due {
			// The datagram leaves from the sender's proxy port, so the
			// receiver sees the address it knows the sender by.
			if _, err := ev.via.conn.WriteToUDPAddrPort(ev.data, ev.to); err == nil {
				p.mu.Lock()
				p.stats.Delivered++
				p.mu.Unlock()
			}
		}
		if len(due) > 0 {
			continue
		}
		if next < 0 {
			next = time.Hour
		}
		timer.Reset(next)
		select {
		case <-timer.C:
		case <-p.wake:
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
		case <-p.done:
			return
		}
	}
}

type event struct {
	at   time.Time
	seq  uint64 // ties keep arrival order
	via  *port
	to   netip.AddrPort
	data []byte
}

type schedule struct {
	events []*event
	seq    uint64
}

func (s *schedule) Len() int { return len(s.events) }
func (s *schedule) Less(i, j int) bool {
	a, b := s.events[i], s.events[j]
	if a.at.Equal(b.at) {
		return a.seq < b.seq
	}
	return a.at.Before(b.at)
}
func (s *schedule) Swap(i, j int) { s.events[i], s.events[j] = s.events[j], s.events[i] }
func (s *schedule) Push(x any)    { s.events = append(s.events, x.(*event)) }
func (s *schedule) Pop() any {
	n := len(s.events)
	ev := s.events[n-1]
	s.events[n-1] = nil
	s.events = s.events[:n-1]
	return ev
}
