package core

import (
	"net/netip"
	"sync"
)

// EventType says what an Event reports.
type EventType uint8

// Event types.
const (
	// EventPeerConnected: the first connection to a peer address is up.
	EventPeerConnected EventType = iota + 1
	// EventPeerDisconnected: the last connection to a peer address ended.
	EventPeerDisconnected
	// EventSendFailed: a message TrySend accepted was not handed over.
	EventSendFailed
	// EventCloseFinished: a close started by CloseConnectionAsync ended.
	EventCloseFinished
	// EventHandshakeRejected: we rejected a peer's certificate or it ours.
	EventHandshakeRejected
	// EventShutdownFinished: the endpoint finished closing.
	EventShutdownFinished
)

// Event is something that happened that no call's result reports: a
// connection coming or going, a queued message given up, an asynchronous
// close finishing, a refused handshake.
type Event struct {
	Type EventType
	// ID is the id TrySend, CloseConnectionAsync or Shutdown returned.
	ID uint64
	// Peer is the peer as the call named it (SendFailed, CloseFinished) or
	// its address (the others).
	Peer string
	// Addr is the peer's IP address and port, when known.
	Addr   netip.AddrPort
	PeerID PeerID
	// Channel is the failed message's channel (SendFailed).
	Channel Channel
	// Err says what went wrong; nil for a graceful disconnect or a close
	// whose messages were all confirmed.
	Err error
	// Unconfirmed counts accepted messages given up (PeerDisconnected,
	// CloseFinished, ShutdownFinished).
	Unconfirmed uint64
	// DroppedBefore counts the events dropped, for lack of room, just
	// before this one.
	DroppedBefore uint64
	// Reason says why in words.
	Reason string
}

// eventQueue holds events until the application takes them. It never
// blocks the engine: when it is full, events are dropped and counted, and
// the next event that fits carries the count.
type eventQueue struct {
	max int

	mu      sync.Mutex
	events  []Event
	head    int
	dropped uint64 // since the last event that fit
	total   uint64 // dropped since the start
	notify  func(nonEmpty bool)
	ended   bool // the last event was pushed: later ones are dropped
}

func newEventQueue(max int) *eventQueue { return &eventQueue{max: max} }

func (q *eventQueue) push(ev Event) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.pushLocked(ev)
}

func (q *eventQueue) pushLocked(ev Event) {
	// The outcome of a close or a shutdown the application asked for is
	// kept even over the limit: whoever waits for it would otherwise wait
	// for ever. They are as many as those calls, so the queue stays
	// bounded.
	if q.ended {
		return
	}
	answersCall := ev.Type == EventCloseFinished || ev.Type == EventShutdownFinished
	if len(q.events)-q.head >= q.max && !answersCall {
		q.dropped++
		q.total++
		return
	}
	ev.DroppedBefore, q.dropped = q.dropped, 0
	if q.head > 0 && len(q.events) == cap(q.events) {
		n := copy(q.events, q.events[q.head:])
		clear(q.events[n:])
		q.events = q.events[:n]
		q.head = 0
	}
	q.events = append(q.events, ev)
	if len(q.events)-q.head == 1 && q.notify != nil {
		q.notify(true)
	}
}

// pushLast pushes the endpoint's last event: nothing is queued after it.
func (q *eventQueue) pushLast(ev Event) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.pushLocked(ev)
	q.ended = true
}

// pop takes the oldest event.
func (q *eventQueue) pop() (Event, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.head == len(q.events) {
		return Event{}, false
	}
	ev := q.events[q.head]
	q.events[q.head] = Event{}
	q.head++
	if q.head == len(q.events) {
		q.events, q.head = q.events[:0], 0
		if q.notify != nil {
			q.notify(false)
		}
	}
	return ev, true
}

// setNotify registers fn as recvQueue.setNotify does.
func (q *eventQueue) setNotify(fn func(nonEmpty bool)) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.notify = fn
	if fn != nil {
		fn(q.head < len(q.events))
	}
}

func (q *eventQueue) droppedTotal() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.total
}

// peerPresence turns connections coming and going into one connected and
// one disconnected event per peer address: a connection replacing another
// (a restart, a simultaneous open, a re-dial after a drain) is not news.
type peerPresence struct {
	mu    sync.Mutex
	conns map[netip.AddrPort]*presence
}

type presence struct {
	live        int
	unconfirmed uint64
}

func newPeerPresence() *peerPresence {
	return &peerPresence{conns: make(map[netip.AddrPort]*presence)}
}

// up counts a connection to addr in; true when it is the first.
func (p *peerPresence) up(addr netip.AddrPort) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	pr := p.conns[addr]
	if pr == nil {
		pr = &presence{}
		p.conns[addr] = pr
	}
	pr.live++
	return pr.live == 1
}

// down counts a connection out, adding what it left unconfirmed; when it
// was the last it returns true with the total left unconfirmed while the
// peer was connected.
func (p *peerPresence) down(addr netip.AddrPort, unconfirmed uint64) (last bool, total uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pr := p.conns[addr]
	if pr == nil {
		return false, 0
	}
	pr.live--
	pr.unconfirmed += unconfirmed
	if pr.live > 0 {
		return false, 0
	}
	delete(p.conns, addr)
	return true, pr.unconfirmed
}
