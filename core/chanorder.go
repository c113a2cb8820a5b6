package core

import (
	"context"
	"net/netip"
	"sync"
)

// chanRef names one channel to one peer, across connections.
type chanRef struct {
	addr netip.AddrPort
	key  chanKey
}

// channelOrder keeps per-channel order across streams and connections: a
// channel has at most one active stream at a time, wherever it is. A new
// stream is claimed before it is opened, and the claim waits until the
// channel's previous stream has finished (the peer confirmed it read the
// stream to its end, or the library gave up on it and counted what was not
// confirmed). Because the claim is made when a stream opens, not when its
// connection leaves the map, there is no moment in which a connection is
// gone from the map but its streams are not yet known to be retiring.
type channelOrder struct {
	mu   sync.Mutex
	last map[chanRef]*orderLink
}

// orderLink is one stream's place in its channel's chain.
type orderLink struct {
	order *channelOrder
	ref   chanRef
	done  chan struct{}
	once  sync.Once

	stopMu sync.Mutex
	stop   func()
}

func newChannelOrder() *channelOrder {
	return &channelOrder{last: make(map[chanRef]*orderLink)}
}

// claim registers a new stream for ref and returns its link, or, when the
// channel's previous stream is still active, returns that stream's link to
// wait on (then claim again).
func (o *channelOrder) claim(ref chanRef) (mine, wait *orderLink) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if prev := o.last[ref]; prev != nil && !prev.finished() {
		return nil, prev
	}
	l := &orderLink{order: o, ref: ref, done: make(chan struct{})}
	o.last[ref] = l
	return l, nil
}

// await claims ref, waiting (until ctx ends) for the previous holders.
// stop, if not nil, is how a later await on ref makes this holder give up
// its turn early (see supersede).
func (o *channelOrder) await(ctx context.Context, ref chanRef, stop func()) (*orderLink, error) {
	for {
		mine, prev := o.claim(ref)
		if mine != nil {
			mine.setStop(stop)
			return mine, nil
		}
		prev.supersede()
		select {
		case <-prev.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (l *orderLink) setStop(stop func()) {
	l.stopMu.Lock()
	l.stop = stop
	l.stopMu.Unlock()
}

// supersede asks the holder to end its turn now, if it said how.
func (l *orderLink) supersede() {
	l.stopMu.Lock()
	stop := l.stop
	l.stop = nil
	l.stopMu.Unlock()
	if stop != nil {
		stop()
	}
}

func (l *orderLink) finished() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

// finish ends the stream's turn: the channel's next stream may open. Safe
// to call more than once, from any of the paths that end a stream.
func (l *orderLink) finish() {
	l.once.Do(func() {
		o := l.order
		o.mu.Lock()
		if o.last[l.ref] == l {
			delete(o.last, l.ref) // keeps the map as small as the active streams
		}
		close(l.done)
		o.mu.Unlock()
	})
}

// active is the number of channels with an active stream.
func (o *channelOrder) active() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.last)
}
