package core

import (
	"net/netip"
	"sync"
)

// tableConn is what the connection table needs to know of a connection.
type tableConn interface {
	comparable
	peerAddr() netip.AddrPort
	lastUsed() uint64
}

// dialOp is a dial in progress; the senders that wait for it share it.
type dialOp struct {
	done chan struct{}
	err  error
}

// connTable owns the connection life cycle's bookkeeping: the live
// connections (at most one per peer address, at most max of them counting
// dials in progress), the dials in progress, every connection not yet
// gone (live or draining) and the choice of eviction victims. It never
// blocks and never calls out; the connections it hands back (victims,
// replaced ones) are the caller's to drain, after the table's lock is
// released. Removing a connection from the map is one step here, and the
// order of a channel across connections is kept by channelOrder, which
// registers every stream when it opens.
type connTable[C tableConn] struct {
	max int

	mu     sync.Mutex
	closed bool
	live   map[netip.AddrPort]C
	dials  map[netip.AddrPort]*dialOp
	all    map[C]struct{} // live or draining: every connection not yet gone
}

func newConnTable[C tableConn](max int) *connTable[C] {
	return &connTable[C]{
		max:   max,
		live:  make(map[netip.AddrPort]C),
		dials: make(map[netip.AddrPort]*dialOp),
		all:   make(map[C]struct{}),
	}
}

// lookup returns the live connection to addr.
func (t *connTable[C]) lookup(addr netip.AddrPort) (C, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c, ok := t.live[addr]
	return c, ok
}

// connOrDial returns the live connection to addr or the dial to wait for;
// start says the caller must run that dial (it is new). Making room for a
// new dial may evict connections, which the caller drains.
func (t *connTable[C]) connOrDial(addr netip.AddrPort) (c C, d *dialOp, start bool, evicted []C, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return c, nil, false, nil, ErrClosed
	}
	if c, ok := t.live[addr]; ok {
		return c, nil, false, nil, nil
	}
	if d := t.dials[addr]; d != nil {
		return c, d, false, nil, nil
	}
	d = &dialOp{done: make(chan struct{})}
	t.dials[addr] = d
	return c, d, true, t.makeRoomLocked(addr), nil
}

// dialDone forgets a finished dial.
func (t *connTable[C]) dialDone(addr netip.AddrPort, d *dialOp) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.dials[addr] == d {
		delete(t.dials, addr)
	}
}

// track records a new connection (not yet in the map) so that closing the
// endpoint finds it; false once the table is closed.
func (t *connTable[C]) track(c C) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.all[c] = struct{}{}
	return true
}

// insert maps a ready connection. When its address already has a live
// connection, keepOld decides which of the two stays: when it returns true
// c is not inserted (inserted false, and the caller drains c); otherwise
// the old one leaves the map and is returned in evicted with any eviction
// victims. After close nothing is inserted, nor a connection that is
// already gone (or was never tracked).
func (t *connTable[C]) insert(c C, keepOld func(old C) bool) (inserted bool, evicted []C) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false, nil
	}
	if _, tracked := t.all[c]; !tracked {
		return false, nil // it ended while it was getting ready
	}
	addr := c.peerAddr()
	if old, ok := t.live[addr]; ok && old != c {
		if keepOld(old) {
			return false, nil
		}
		delete(t.live, addr)
		evicted = append(evicted, old)
	}
	evicted = append(evicted, t.makeRoomLocked(addr)...)
	t.live[addr] = c
	return true, evicted
}

// makeRoomLocked picks the least recently used live connections to evict
// until the map, counting dials in progress and the one being added, fits
// within max. Dials are never evicted: they count when they land.
func (t *connTable[C]) makeRoomLocked(adding netip.AddrPort) []C {
	var out []C
	for {
		n := len(t.live)
		for a := range t.dials {
			if _, mapped := t.live[a]; !mapped && a != adding {
				n++
			}
		}
		if _, mapped := t.live[adding]; !mapped {
			n++
		}
		if n <= t.max {
			return out
		}
		var victim C
		found := false
		for a, c := range t.live {
			if a == adding {
				continue
			}
			if !found || c.lastUsed() < victim.lastUsed() {
				victim, found = c, true
			}
		}
		if !found {
			return out
		}
		delete(t.live, victim.peerAddr())
		out = append(out, victim)
	}
}

// remove takes c out of the map if it is there; true if it was.
func (t *connTable[C]) remove(c C) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.removeLocked(c)
}

func (t *connTable[C]) removeLocked(c C) bool {
	if cur, ok := t.live[c.peerAddr()]; ok && cur == c {
		delete(t.live, c.peerAddr())
		return true
	}
	return false
}

// removeAddr takes addr's live connection out of the map, and returns it
// with the connections to addr that are still draining.
func (t *connTable[C]) removeAddr(addr netip.AddrPort) (live C, found bool, draining []C) {
	t.mu.Lock()
	defer t.mu.Unlock()
	live, found = t.live[addr]
	if found {
		delete(t.live, addr)
	}
	for c := range t.all {
		if c.peerAddr() == addr && (!found || c != live) {
			draining = append(draining, c)
		}
	}
	return live, found, draining
}

// gone forgets a connection that ended; false if it was not tracked (it
// was already gone, or never tracked).
func (t *connTable[C]) gone(c C) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.removeLocked(c)
	_, tracked := t.all[c]
	delete(t.all, c)
	return tracked
}

// close empties the map, refuses new connections and returns every
// connection not yet gone.
func (t *connTable[C]) close() []C {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	out := make([]C, 0, len(t.all))
	for c := range t.all {
		out = append(out, c)
	}
	clear(t.live)
	return out
}

// snapshot returns every connection not yet gone (live or draining), and
// which of them are live.
func (t *connTable[C]) snapshot() (all []C, live map[C]bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	all = make([]C, 0, len(t.all))
	live = make(map[C]bool, len(t.live))
	for c := range t.all {
		all = append(all, c)
	}
	for _, c := range t.live {
		live[c] = true
	}
	return all, live
}

// size is the number of live connections.
func (t *connTable[C]) size() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.live)
}
