package core

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// outItem is one command waiting in a peer's outbound queue: a message to
// send, or a close of the peer's connection taking its turn after the
// messages before it.
type outItem struct {
	id      uint64
	isClose bool
	key     chanKey
	msg     []byte // a copy for TrySend; the caller's memory for a waiting caller
	// deadline is when a message that is still queued is given up
	// (zero: never).
	deadline time.Time
	// ctx is a waiting caller's context; nil for TrySend's messages.
	ctx context.Context
	// done receives the outcome when a caller waits for it (buffered).
	done chan error
	// taken is set under outboxes.mu when the pump takes the item; until
	// then a waiting caller that gives up may withdraw it.
	taken bool
}

// outbox is one peer's outbound queue. Items leave it in order; the one
// being handed over still counts in pending, so that a send made while
// it is in hand waits its turn behind it.
type outbox struct {
	peer    Peer
	items   []*outItem
	bytes   uint64
	pending int
	running bool
	// refused is set when TrySend was turned away for lack of room here;
	// it clears once the queue drained to half its limit.
	refused bool
}

// outboxes owns every peer's outbound queue and the budgets that bound
// them, and runs one pump goroutine per non-empty queue.
type outboxes struct {
	e               *Endpoint
	perPeer, budget uint64

	// pending counts items queued or in hand everywhere: while it is 0 a
	// send takes no lock to learn that nothing is ahead of it.
	pending atomic.Int64

	mu            sync.Mutex
	m             map[Peer]*outbox
	bytes         uint64
	refusedPeers  int  // outboxes with refused set
	refusedTotal  bool // TrySend was turned away for the total budget
	closed        bool
	idle          chan struct{} // closed when pending reaches 0 after close
	notify        func(ready bool)
	notifiedReady bool

	// ctx ends the hand-over of queued items: when the endpoint's close
	// stops waiting for them.
	ctx    context.Context
	cancel context.CancelFunc
	pumps  sync.WaitGroup
	// failedAtClose counts messages that failed because the endpoint
	// closed before their turn.
	failedAtClose atomic.Uint64
}

func newOutboxes(e *Endpoint, perPeer, budget uint64) *outboxes {
	o := &outboxes{e: e, perPeer: perPeer, budget: budget, m: make(map[Peer]*outbox), notifiedReady: true}
	o.ctx, o.cancel = context.WithCancel(context.Background())
	return o
}

// busy reports whether p has items queued or in hand.
func (o *outboxes) busy(p Peer) bool {
	if o.pending.Load() == 0 {
		return false
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	b := o.m[p]
	return b != nil && b.pending > 0
}

// add queues it for p. A TrySend message (force false) is refused with
// ErrWouldBlock when p's queue or the total is over its budget, except
// that an empty queue takes one message of any size.
func (o *outboxes) add(p Peer, it *outItem, force bool) error {
	n := uint64(len(it.msg))
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return fmt.Errorf("%w: the endpoint is shutting down", ErrClosed)
	}
	b := o.m[p]
	if b == nil {
		b = &outbox{peer: p}
		o.m[p] = b
	}
	if !force {
		switch {
		case b.pending > 0 && b.bytes+n > o.perPeer:
			o.refuseLocked(b, false)
			return fmt.Errorf("%w: the outbound queue to %s holds %d bytes (limit %d)", ErrWouldBlock, p, b.bytes, o.perPeer)
		case o.pending.Load() > 0 && o.bytes+n > o.budget:
			o.refuseLocked(b, true)
			return fmt.Errorf("%w: the outbound queues hold %d bytes (limit %d)", ErrWouldBlock, o.bytes, o.budget)
		}
	}
	b.items = append(b.items, it)
	b.bytes += n
	b.pending++
	o.bytes += n
	o.pending.Add(1)
	if !b.running {
		b.running = true
		o.pumps.Add(1)
		go o.pump(b)
	}
	return nil
}

// refuseLocked records a refusal: the send fd stops being readable until
// the queue that refused has room again.
func (o *outboxes) refuseLocked(b *outbox, total bool) {
	if total {
		o.refusedTotal = true
	} else if !b.refused {
		b.refused = true
		o.refusedPeers++
	}
	o.notifyLocked()
}

// releaseLocked clears refusals that have room again: half the limit, so
// that a sender woken by the fd does not fill the queue at once.
func (o *outboxes) releaseLocked(b *outbox) {
	if b.refused && b.bytes <= o.perPeer/2 {
		b.refused = false
		o.refusedPeers--
	}
	if o.refusedTotal && o.bytes <= o.budget/2 {
		o.refusedTotal = false
	}
	o.notifyLocked()
}

func (o *outboxes) notifyLocked() {
	ready := o.refusedPeers == 0 && !o.refusedTotal
	if ready != o.notifiedReady && o.notify != nil {
		o.notify(ready)
	}
	o.notifiedReady = ready
}

// setNotify registers fn, called under the lock with true while no
// refused queue is waiting for room and false otherwise; it is called
// once at registration. nil detaches.
func (o *outboxes) setNotify(fn func(ready bool)) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.notify = fn
	o.notifiedReady = o.refusedPeers == 0 && !o.refusedTotal
	if fn != nil {
		fn(o.notifiedReady)
	}
}

// pump hands b's items over in order until b is empty.
func (o *outboxes) pump(b *outbox) {
	defer o.pumps.Done()
	for {
		o.mu.Lock()
		if len(b.items) == 0 {
			b.running = false
			if b.pending == 0 {
				delete(o.m, b.peer)
			}
			o.mu.Unlock()
			return
		}
		it := b.items[0]
		b.items[0] = nil
		b.items = b.items[1:]
		it.taken = true
		o.mu.Unlock()

		err := o.handOver(b.peer, it)

		o.mu.Lock()
		o.leaveLocked(b, it)
		var rest []*outItem
		if err != nil && !it.isClose && failsPeer(err) {
			// Every message queued behind it would wait for the same
			// dial or name and fail the same way.
			rest = o.takeMessagesLocked(b)
		}
		o.mu.Unlock()
		o.finish(b.peer, it, err)
		for _, r := range rest {
			o.finish(b.peer, r, err)
		}
	}
}

// leaveLocked takes it out of the counts.
func (o *outboxes) leaveLocked(b *outbox, it *outItem) {
	n := uint64(len(it.msg))
	b.bytes -= n
	b.pending--
	o.bytes -= n
	if o.pending.Add(-1) == 0 && o.closed && o.idle != nil {
		close(o.idle)
		o.idle = nil
	}
	o.releaseLocked(b)
}

// takeMessagesLocked removes b's queued messages (not its closes).
func (o *outboxes) takeMessagesLocked(b *outbox) []*outItem {
	var out []*outItem
	kept := b.items[:0]
	for _, it := range b.items {
		if it.isClose {
			kept = append(kept, it)
			continue
		}
		it.taken = true
		o.leaveLocked(b, it)
		out = append(out, it)
	}
	clear(b.items[len(kept):])
	b.items = kept
	return out
}

// failsPeer reports an error that every message to the peer would meet.
func failsPeer(err error) bool {
	return errors.Is(err, ErrConnection) || errors.Is(err, ErrTLS) || errors.Is(err, ErrResolve) ||
		errors.Is(err, ErrBadAddress) || errors.Is(err, ErrClosed)
}

// handOver sends or closes for it, within its deadline, its caller's
// context and the outboxes' context.
func (o *outboxes) handOver(p Peer, it *outItem) error {
	e := o.e
	if !it.deadline.IsZero() && !time.Now().Before(it.deadline) && !it.isClose {
		return fmt.Errorf("%w: the send timeout passed while the message waited for its turn", ErrTimeout)
	}
	ctx, cancel := context.WithCancel(o.ctx)
	defer cancel()
	if it.ctx != nil {
		stop := context.AfterFunc(it.ctx, cancel)
		defer stop()
	}
	if !it.deadline.IsZero() {
		var dcancel context.CancelFunc
		ctx, dcancel = context.WithDeadline(ctx, it.deadline)
		defer dcancel()
	}
	var addr netip.AddrPort
	var err error
	if it.isClose {
		addr, err = e.closeTarget(ctx, p)
	} else {
		addr, err = e.peerAddr(ctx, p)
	}
	if err == nil {
		if it.isClose {
			err = e.closeAddr(addr)
		} else if p.IsName() {
			// Resolved: the address's own queue keeps its order.
			err = e.sendOrdered(ctx, PeerAt(addr), it.key, it.msg)
		} else {
			_, err = e.sendTo(ctx, addr, it.key, hdrOf(it.key), it.msg)
		}
	}
	if err != nil && o.ctx.Err() != nil {
		return fmt.Errorf("%w: the endpoint closed before the message's turn: %w", ErrClosed, err)
	}
	return err
}

// finish reports an item's outcome to its waiting caller, or as an event.
func (o *outboxes) finish(p Peer, it *outItem, err error) {
	if it.done != nil {
		it.done <- err
		return
	}
	e := o.e
	if it.isClose {
		ev := Event{Type: EventCloseFinished, ID: it.id, Peer: p.String(), Err: err, Reason: "closed"}
		if a, ok := p.Addr(); ok {
			ev.Addr = a
		}
		var ue *UnconfirmedError
		if errors.As(err, &ue) {
			ev.Unconfirmed = ue.Messages
		}
		if err != nil {
			ev.Reason = err.Error()
		}
		e.events.push(ev)
		return
	}
	if err == nil {
		return
	}
	e.stats.sendsFailed.Add(1)
	if errors.Is(err, ErrClosed) {
		o.failedAtClose.Add(1)
	}
	ev := Event{Type: EventSendFailed, ID: it.id, Peer: p.String(), Err: err, Reason: err.Error()}
	ev.Channel = channelOf(it.key)
	if a, ok := e.res.cached(p); ok {
		ev.Addr, ev.Channel.Addr = a, a
	}
	e.events.push(ev)
	e.warnf("queued message %d to %s not sent: %v", it.id, p, err)
}

// wait waits for a caller's item; a caller that gives up before the pump
// took the item withdraws it.
func (o *outboxes) wait(p Peer, it *outItem) error {
	select {
	case err := <-it.done:
		return err
	case <-it.ctx.Done():
	}
	o.mu.Lock()
	if !it.taken {
		if b := o.m[p]; b != nil {
			for i, x := range b.items {
				if x == it {
					b.items = append(b.items[:i], b.items[i+1:]...)
					it.taken = true
					o.leaveLocked(b, it)
					o.mu.Unlock()
					return fmt.Errorf("%w: waiting for the messages queued before it: %w", ErrTimeout, it.ctx.Err())
				}
			}
		}
	}
	o.mu.Unlock()
	return <-it.done // in hand: its hand-over ends with the caller's context
}

// close refuses new items, waits until the queued ones are handed over or
// the deadline passes, then stops the hand-overs in progress; what could
// not be handed over fails with ErrClosed. It returns how many messages
// failed that way.
func (o *outboxes) close(deadline <-chan time.Time) uint64 {
	o.mu.Lock()
	o.closed = true
	var idle chan struct{}
	if o.pending.Load() > 0 {
		idle = make(chan struct{})
		o.idle = idle
	}
	o.mu.Unlock()
	if idle != nil {
		select {
		case <-idle:
		case <-deadline:
		}
	}
	o.mu.Lock()
	type left struct {
		p     Peer
		items []*outItem
	}
	var all []left
	for _, b := range o.m {
		items := b.items
		for _, it := range items {
			it.taken = true
			o.leaveLocked(b, it)
		}
		b.items = nil
		all = append(all, left{b.peer, items})
	}
	o.mu.Unlock()
	o.cancel() // items in hand end now
	o.pumps.Wait()
	err := fmt.Errorf("%w: the endpoint closed before the message's turn", ErrClosed)
	for _, l := range all {
		for _, it := range l.items {
			o.finish(l.p, it, err)
		}
	}
	return o.failedAtClose.Load()
}

// depth is what is queued: items and payload bytes.
func (o *outboxes) depth() (items, bytes uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return uint64(max(o.pending.Load(), 0)), o.bytes
}

// channelOf describes a channel key as a received message's Channel would.
func channelOf(k chanKey) Channel {
	ch := Channel{Kind: k.kind}
	switch k.kind {
	case KindChannel:
		ch.TeamID, ch.Label = k.teamID, k.label
	case KindSync:
		ch.SyncType = k.syncType
	}
	return ch
}
