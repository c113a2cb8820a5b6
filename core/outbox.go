package core

import (
	"context"
	"errors"
	"fmt"
	"slices"
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
	// given is the peer's address as the application wrote it, for the
	// item's event.
	given string
	key   chanKey
	msg   []byte // a copy for TrySend; the caller's memory for a waiting caller
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

// peerText is the address to report for the item queued under p.
func (it *outItem) peerText(p Peer) string {
	if it.given != "" {
		return it.given
	}
	return p.String()
}

// owned reports an item whose message the queue holds a copy of (a
// TrySend's): only those count in the outbound gauges and budgets. A
// waiting caller's message stays in the caller's memory.
func (it *outItem) owned() bool { return !it.isClose && it.done == nil }

// size is what the item counts against the budgets.
func (it *outItem) size() uint64 {
	if !it.owned() {
		return 0
	}
	return uint64(len(it.msg))
}

// outbox is one peer's outbound queue. Its pump takes items in order and
// passes each message to its channel's worker, which hands the channel's
// messages over one at a time: a channel whose stream is stuck (its
// reader does not read) holds up only its own messages, not the other
// channels of the peer. A close waits until the workers handed over every
// message passed to them before it. An item counts in pending (and its
// bytes in bytes) until it was handed over, so that a send made meanwhile
// waits its turn behind it.
type outbox struct {
	peer    Peer
	items   []*outItem
	bytes   uint64
	pending int
	msgs    int // pending items that are TrySend's messages
	running bool
	workers map[chanKey]*chanWorker
	// inWorkers counts the messages passed to workers and not yet handed
	// over; workersIdle, when set, is closed once it reaches 0 (a close
	// waits on it).
	inWorkers   int
	workersIdle chan struct{}
	// refused is set when TrySend was turned away for lack of room here;
	// it clears once the queue drained to half its limit.
	refused bool
}

// chanWorker hands one channel's queued messages over, in order.
type chanWorker struct {
	key   chanKey
	items []*outItem
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
	msgs          int  // queued items that are TrySend's messages
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
	b := o.m[p.key()]
	return b != nil && b.pending > 0
}

// add queues it for p. A TrySend message (force false) is refused with
// ErrWouldBlock when p's queue or the total is over its budget, except
// that an empty queue takes one message of any size.
func (o *outboxes) add(p Peer, it *outItem, force bool) error {
	n := it.size()
	p = p.key()
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return fmt.Errorf("%w: the endpoint is shutting down", ErrClosed)
	}
	b := o.m[p]
	if !force {
		switch {
		case b != nil && b.pending > 0 && b.bytes+n > o.perPeer:
			o.refuseLocked(b, false)
			return fmt.Errorf("%w: the outbound queue to %s holds %d bytes (limit %d)", ErrWouldBlock, p, b.bytes, o.perPeer)
		case o.pending.Load() > 0 && o.bytes+n > o.budget:
			o.refuseLocked(nil, true)
			return fmt.Errorf("%w: the outbound queues hold %d bytes (limit %d)", ErrWouldBlock, o.bytes, o.budget)
		}
	}
	if b == nil {
		b = &outbox{peer: p}
		o.m[p] = b
	}
	b.items = append(b.items, it)
	o.enterLocked(b, it)
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
	if total || b == nil {
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
	if b != nil && b.refused && b.bytes <= o.perPeer/2 {
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

// pump passes b's items on in order until b is empty: messages to their
// channel's worker, closes run once the workers have handed over what
// came before them.
func (o *outboxes) pump(b *outbox) {
	defer o.pumps.Done()
	for {
		o.mu.Lock()
		if len(b.items) == 0 {
			b.running = false
			o.forgetLocked(b)
			o.mu.Unlock()
			return
		}
		if b.peer.IsName() {
			o.mu.Unlock()
			o.resolveQueue(b)
			continue
		}
		it := b.items[0]
		if !it.isClose {
			b.items[0] = nil
			b.items = b.items[1:]
			o.dispatchLocked(b, it)
			o.mu.Unlock()
			continue
		}
		if b.inWorkers > 0 {
			if b.workersIdle == nil {
				b.workersIdle = make(chan struct{})
			}
			idle := b.workersIdle
			o.mu.Unlock()
			<-idle
			continue
		}
		b.items[0] = nil
		b.items = b.items[1:]
		it.taken = true
		o.mu.Unlock()

		err := o.handOver(b.peer, it)

		o.mu.Lock()
		o.leaveLocked(b, it)
		o.mu.Unlock()
		o.finish(b.peer, it, err)
	}
}

// dispatchLocked passes a message to its channel's worker.
func (o *outboxes) dispatchLocked(b *outbox, it *outItem) {
	if b.workers == nil {
		b.workers = make(map[chanKey]*chanWorker)
	}
	w := b.workers[it.key]
	if w == nil {
		w = &chanWorker{key: it.key}
		b.workers[it.key] = w
		o.pumps.Add(1)
		go o.work(b, w)
	}
	w.items = append(w.items, it)
	b.inWorkers++
}

// work hands w's messages over in order until it has none.
func (o *outboxes) work(b *outbox, w *chanWorker) {
	defer o.pumps.Done()
	for {
		o.mu.Lock()
		if len(w.items) == 0 {
			delete(b.workers, w.key)
			o.forgetLocked(b)
			o.mu.Unlock()
			return
		}
		it := w.items[0]
		w.items[0] = nil
		w.items = w.items[1:]
		it.taken = true
		o.mu.Unlock()

		err := o.handOver(b.peer, it)

		o.mu.Lock()
		o.workerDoneLocked(b)
		o.leaveLocked(b, it)
		var rest []*outItem
		if err != nil && failsPeer(err) {
			// Every message queued for the peer would wait for the same
			// dial and fail the same way.
			rest = o.takeMessagesLocked(b)
		}
		o.mu.Unlock()
		o.finish(b.peer, it, err)
		for _, r := range rest {
			o.finish(b.peer, r, err)
		}
	}
}

// workerDoneLocked counts a message a worker no longer holds.
func (o *outboxes) workerDoneLocked(b *outbox) {
	b.inWorkers--
	if b.inWorkers == 0 && b.workersIdle != nil {
		close(b.workersIdle)
		b.workersIdle = nil
	}
}

// resolveQueue resolves the name of b's queue. Resolved, the whole queue
// joins its address's, so that sends by name and by address share one
// order from then on; not resolved, every item in it fails.
func (o *outboxes) resolveQueue(b *outbox) {
	// Bounded by the resolve timeout, not by the first item's time: the
	// answer serves every item queued.
	addr, fresh, err := o.e.res.lookupFresh(o.ctx, b.peer)
	if err != nil && o.ctx.Err() != nil {
		err = fmt.Errorf("%w: the endpoint closed before the message's turn: %w", ErrClosed, err)
	}
	o.mu.Lock()
	if err == nil {
		// The answer is cached as the queue moves, under the lock that
		// asAddress takes: a send that finds the answer cached finds the
		// name's queue moved.
		if fresh {
			o.e.res.store(b.peer, addr.Addr())
		}
		o.moveLocked(b, PeerAt(addr))
		o.mu.Unlock()
		return
	}
	failed := b.items
	b.items = nil
	for _, it := range failed {
		it.taken = true
		o.leaveLocked(b, it)
	}
	o.mu.Unlock()
	for _, it := range failed {
		o.finish(b.peer, it, err)
	}
}

// joinName moves what is queued under name to the queue of its address,
// which the caller found cached: from now on both are one queue.
func (o *outboxes) joinName(name, addr Peer) {
	if o.pending.Load() == 0 {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if b := o.m[name.key()]; b != nil && len(b.items) > 0 {
		o.moveLocked(b, addr.key())
	}
}

// moveLocked moves b's queue, in order, to the end of dst's queue. b's
// items are all queued (a name's queue keeps none in hand).
func (o *outboxes) moveLocked(b *outbox, dst Peer) {
	d := o.m[dst]
	if d == nil {
		d = &outbox{peer: dst}
		o.m[dst] = d
	}
	for _, x := range b.items {
		n := x.size()
		b.bytes -= n
		b.pending--
		d.bytes += n
		d.pending++
		if x.owned() {
			b.msgs--
			d.msgs++
		}
		d.items = append(d.items, x)
	}
	clear(b.items)
	b.items = b.items[:0]
	o.releaseLocked(b)
	if len(d.items) > 0 && !d.running {
		d.running = true
		o.pumps.Add(1)
		go o.pump(d)
	}
}

// enterLocked counts it in b.
func (o *outboxes) enterLocked(b *outbox, it *outItem) {
	n := it.size()
	b.bytes += n
	b.pending++
	if it.owned() {
		b.msgs++
		o.msgs++
	}
	o.bytes += n
	o.pending.Add(1)
}

// leaveLocked takes it out of the counts.
func (o *outboxes) leaveLocked(b *outbox, it *outItem) {
	n := it.size()
	b.bytes -= n
	b.pending--
	if it.owned() {
		b.msgs--
		o.msgs--
	}
	o.bytes -= n
	if o.pending.Add(-1) == 0 && o.closed && o.idle != nil {
		close(o.idle)
		o.idle = nil
	}
	o.releaseLocked(b)
	o.forgetLocked(b)
}

// forgetLocked drops b from the map once nothing of it is left.
func (o *outboxes) forgetLocked(b *outbox) {
	if b.pending == 0 && !b.running && len(b.workers) == 0 && len(b.items) == 0 && o.m[b.peer] == b {
		delete(o.m, b.peer)
	}
}

// takeMessagesLocked removes b's queued messages (not its closes), those
// its workers hold included.
func (o *outboxes) takeMessagesLocked(b *outbox) []*outItem {
	var out []*outItem
	for _, w := range b.workers {
		for _, it := range w.items {
			it.taken = true
			o.workerDoneLocked(b)
			o.leaveLocked(b, it)
			out = append(out, it)
		}
		clear(w.items)
		w.items = w.items[:0]
	}
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
// context and the outboxes' context. p is an address.
func (o *outboxes) handOver(p Peer, it *outItem) error {
	e := o.e
	if !it.deadline.IsZero() && !time.Now().Before(it.deadline) && !it.isClose {
		return fmt.Errorf("%w: the send timeout passed while the message waited for its turn", ErrTimeout)
	}
	ctx, cancel := o.itemContext(it)
	defer cancel()
	// Only an address's queue hands over: a name's queue joins its
	// address's once resolved.
	addr, _ := p.Addr()
	var err error
	if it.isClose {
		err = e.closeAddr(addr)
	} else if addr, err = e.sendAddr(addr); err == nil {
		_, err = e.sendTo(ctx, addr, it.key, hdrOf(it.key), it.msg)
	}
	if err != nil && o.ctx.Err() != nil {
		return fmt.Errorf("%w: the endpoint closed before the message's turn: %w", ErrClosed, err)
	}
	return err
}

// itemContext is the context an item is handed over in: it ends with
// the outboxes' context, the waiting caller's and the item's deadline.
func (o *outboxes) itemContext(it *outItem) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(o.ctx)
	var stop func() bool
	if it.ctx != nil {
		stop = context.AfterFunc(it.ctx, cancel)
	}
	dcancel := context.CancelFunc(func() {})
	if !it.deadline.IsZero() {
		ctx, dcancel = context.WithDeadline(ctx, it.deadline)
	}
	return ctx, func() {
		dcancel()
		if stop != nil {
			stop()
		}
		cancel()
	}
}

// finish reports an item's outcome to its waiting caller, or as an event.
func (o *outboxes) finish(p Peer, it *outItem, err error) {
	if it.done != nil {
		it.done <- err
		return
	}
	e := o.e
	if it.isClose {
		ev := Event{Type: EventCloseFinished, ID: it.id, Peer: it.peerText(p), Err: err, Reason: "closed"}
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
	ev := Event{Type: EventSendFailed, ID: it.id, Peer: it.peerText(p), Err: err, Reason: err.Error()}
	ev.Channel = channelOf(it.key)
	if a, ok := e.res.cached(p); ok {
		ev.Addr, ev.Channel.Addr = a, a
	}
	e.events.push(ev)
	e.warnf("queued message %d to %s not sent: %v", it.id, it.peerText(p), err)
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
		if b := o.m[p.key()]; b != nil && o.withdrawLocked(b, it) {
			o.mu.Unlock()
			return fmt.Errorf("%w: waiting for the messages queued before it: %w", ErrTimeout, it.ctx.Err())
		}
	}
	o.mu.Unlock()
	return <-it.done // in hand: its hand-over ends with the caller's context
}

// withdrawLocked removes it from b's queue or its channel's worker.
func (o *outboxes) withdrawLocked(b *outbox, it *outItem) bool {
	if i := slices.Index(b.items, it); i >= 0 {
		b.items = slices.Delete(b.items, i, i+1)
		it.taken = true
		o.leaveLocked(b, it)
		return true
	}
	if w := b.workers[it.key]; w != nil {
		if i := slices.Index(w.items, it); i >= 0 {
			w.items = slices.Delete(w.items, i, i+1)
			it.taken = true
			o.workerDoneLocked(b)
			o.leaveLocked(b, it)
			return true
		}
	}
	return false
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
		items := o.takeMessagesLocked(b)
		for _, it := range b.items { // the closes
			it.taken = true
			o.leaveLocked(b, it)
			items = append(items, it)
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

// depth is what is queued: messages and their payload bytes.
func (o *outboxes) depth() (msgs, bytes uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return uint64(o.msgs), o.bytes
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
