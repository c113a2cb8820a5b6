package core

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/aranya-quic/aranya-quic/core/wire"
)

// errMustWait means a send without waiting found that it would have to
// wait (no stream yet, a full buffer, a large direct write).
var errMustWait = errors.New("the send would have to wait")

// hdrOf builds the channel header of key.
func hdrOf(k chanKey) *wire.QuicMessage {
	if k.kind == KindSync {
		return &wire.QuicMessage{Kind: KindSync, Sync: &wire.SyncMessage{SyncType: k.syncType}}
	}
	return &wire.QuicMessage{Kind: KindChannel, Channel: &wire.ChannelMessage{TeamID: k.teamID, Label: k.label}}
}

func channelKey(teamID TeamID, label string) (chanKey, error) {
	if err := wire.ValidateLabel(label); err != nil {
		return chanKey{}, err
	}
	return chanKey{kind: KindChannel, teamID: teamID, label: label}, nil
}

func syncKey(syncType uint32) chanKey { return chanKey{kind: KindSync, syncType: syncType} }

// TrySend sends msg on the channel (p, teamID, label) without blocking:
// it hands msg to the channel's stream when the stream can take it at
// once, and otherwise copies it into p's outbound queue, from which it is
// sent in order (dialing or resolving as needed). It returns the message's
// id, or ErrWouldBlock when p's queue (or all queues together) is over its
// budget; then nothing was accepted. A message the queue later fails to
// hand over is reported by an EventSendFailed with its id. Order holds per
// channel across Send and TrySend mixed.
func (e *Endpoint) TrySend(p Peer, teamID TeamID, label string, msg []byte) (uint64, error) {
	key, err := channelKey(teamID, label)
	if err != nil {
		return 0, err
	}
	return e.trySend(p, key, msg, e.ids.Add(1))
}

// TrySendSync is TrySend for an Aranya sync message.
func (e *Endpoint) TrySendSync(p Peer, syncType uint32, msg []byte) (uint64, error) {
	return e.trySend(p, syncKey(syncType), msg, e.ids.Add(1))
}

// TrySendBatch is count calls of TrySend on one channel, message i being
// msg(i). It stops at the first message refused or failing its checks and
// returns how many were accepted, the first one's id (message i has id
// first+i) and that message's error.
func (e *Endpoint) TrySendBatch(p Peer, teamID TeamID, label string, count int, msg func(i int) ([]byte, error)) (n int, first uint64, err error) {
	key, err := channelKey(teamID, label)
	if err != nil {
		return 0, 0, err
	}
	return e.trySendBatch(p, key, count, msg)
}

// TrySendSyncBatch is TrySendBatch for Aranya sync messages.
func (e *Endpoint) TrySendSyncBatch(p Peer, syncType uint32, count int, msg func(i int) ([]byte, error)) (n int, first uint64, err error) {
	return e.trySendBatch(p, syncKey(syncType), count, msg)
}

func (e *Endpoint) trySendBatch(p Peer, key chanKey, count int, msg func(i int) ([]byte, error)) (int, uint64, error) {
	if count <= 0 {
		return 0, 0, e.checkPeer(p)
	}
	first := e.ids.Add(uint64(count)) - uint64(count) + 1
	for i := 0; i < count; i++ {
		m, err := msg(i)
		if err == nil {
			_, err = e.trySend(p, key, m, first+uint64(i))
		}
		if err != nil {
			return i, first, err
		}
	}
	return count, first, nil
}

// checkPeer refuses what no send to p could do: a closed endpoint, a bad
// or own address.
func (e *Endpoint) checkPeer(p Peer) error {
	if e.closing.Load() {
		return ErrClosed
	}
	if ap, ok := p.Addr(); ok {
		if _, err := e.sendAddr(ap); err != nil {
			return err
		}
	} else if !p.IsName() {
		return fmt.Errorf("%w: no address", ErrBadAddress)
	}
	return nil
}

func (e *Endpoint) trySend(p Peer, key chanKey, msg []byte, id uint64) (uint64, error) {
	if err := e.checkPeer(p); err != nil {
		return 0, err
	}
	given := p
	p = e.asAddress(p)
	if uint64(len(msg)) > e.cfg.MaxMessageSize {
		return 0, fmt.Errorf("%w: %d bytes, the limit is %d", ErrMessageTooLarge, len(msg), e.cfg.MaxMessageSize)
	}
	if e.sendDirect(p, key, msg) {
		return id, nil
	}
	// Queued: the copy and the key outlive the caller's memory.
	key.label = strings.Clone(key.label)
	it := &outItem{id: id, key: key, msg: append([]byte(nil), msg...), given: strings.Clone(given.Given())}
	if e.cfg.SendTimeout > 0 {
		it.deadline = time.Now().Add(e.cfg.SendTimeout)
	}
	if err := e.out.add(p, it, false); err != nil {
		return 0, err
	}
	return id, nil
}

// sendDirect hands msg to the channel's stream if that needs no waiting
// and nothing queued for the peer is ahead of it.
func (e *Endpoint) sendDirect(p Peer, key chanKey, msg []byte) bool {
	if e.out.busy(p) {
		return false
	}
	addr, ok := e.res.cached(p)
	if !ok {
		return false
	}
	if p.IsName() {
		if _, err := e.sendAddr(addr); err != nil || e.out.busy(PeerAt(addr)) {
			return false // the queue reports the problem, in order
		}
	}
	c, ok := e.conns.lookup(addr)
	if !ok || uint64(len(msg)) > c.peerMaxMessage || c.revoked.Load() {
		return false
	}
	c.mu.Lock()
	s := c.streams[key]
	c.mu.Unlock()
	if s == nil {
		return false
	}
	lctx := newLazyContext(e.ctx, e.cfg.SendTimeout)
	lctx.noWait = true
	err := s.send(&lctx, msg)
	lctx.release()
	if err != nil {
		if errors.Is(err, errStreamRetired) || errors.Is(err, ErrNotAuthorized) {
			c.dropStream(s)
		}
		return false
	}
	e.sentOn(sent{c: c, s: s}, msg)
	return true
}

// asAddress turns a peer named by a host name into its address when the
// name's answer is cached, moving what is still queued under the name to
// the address's queue first, so that sends by name and by address share
// one order from then on.
func (e *Endpoint) asAddress(p Peer) Peer {
	if !p.IsName() {
		return p
	}
	ap, ok := e.res.cached(p)
	if !ok {
		return p
	}
	to := PeerAt(ap)
	e.out.joinName(p, to)
	return to
}

// sendPeer is the blocking send to p: it waits behind what is queued for
// p, and resolves a host name.
func (e *Endpoint) sendPeer(ctx context.Context, p Peer, key chanKey, msg []byte) error {
	if e.closing.Load() {
		return ErrClosed
	}
	p = e.asAddress(p)
	if ap, ok := p.Addr(); ok && !e.out.busy(p) {
		addr, err := e.sendAddr(ap)
		if err != nil {
			return err
		}
		_, err = e.sendTo(ctx, addr, key, hdrOf(key), msg)
		return err
	}
	if err := e.checkPeer(p); err != nil {
		return err
	}
	return e.sendOrdered(ctx, p, key, msg)
}

// sendOrdered sends msg to p after whatever is queued for p, waiting for
// its turn (within the send timeout).
func (e *Endpoint) sendOrdered(ctx context.Context, p Peer, key chanKey, msg []byte) error {
	if uint64(len(msg)) > e.cfg.MaxMessageSize {
		return fmt.Errorf("%w: %d bytes, the limit is %d", ErrMessageTooLarge, len(msg), e.cfg.MaxMessageSize)
	}
	if e.out.busy(p) {
		return e.queueAndWait(ctx, p, &outItem{key: key, msg: msg})
	}
	addr, err := e.peerAddr(ctx, p)
	if err != nil {
		return err
	}
	if p.IsName() {
		return e.sendOrdered(ctx, PeerAt(addr), key, msg)
	}
	_, err = e.sendTo(ctx, addr, key, hdrOf(key), msg)
	return err
}

// queueAndWait queues a caller's item behind p's queue and waits for it.
func (e *Endpoint) queueAndWait(ctx context.Context, p Peer, it *outItem) error {
	it.ctx = ctx
	if e.cfg.SendTimeout > 0 && !it.isClose {
		it.deadline = time.Now().Add(e.cfg.SendTimeout)
		var cancel context.CancelFunc
		it.ctx, cancel = context.WithDeadline(ctx, it.deadline)
		defer cancel()
	}
	it.done = make(chan error, 1)
	if err := e.out.add(p, it, true); err != nil {
		return err
	}
	return e.out.wait(p, it)
}

// peerAddr is the address to use for p: its own, checked, or its host
// name resolved.
func (e *Endpoint) peerAddr(ctx context.Context, p Peer) (netip.AddrPort, error) {
	if ap, ok := p.Addr(); ok {
		return e.sendAddr(ap)
	}
	ap, err := e.res.resolve(ctx, p)
	if err != nil {
		return ap, err
	}
	return e.sendAddr(ap)
}

// CloseConnectionAsync starts closing the connection to p, after what is
// queued for p, and returns at once with the close's id; an
// EventCloseFinished with that id reports the outcome.
func (e *Endpoint) CloseConnectionAsync(p Peer) (uint64, error) {
	if err := e.checkPeer(p); err != nil {
		return 0, err
	}
	given := strings.Clone(p.Given())
	p = e.asAddress(p) // behind what was sent by the address too
	id := e.ids.Add(1)
	if err := e.out.add(p, &outItem{id: id, isClose: true, given: given}, true); err != nil {
		return 0, err
	}
	return id, nil
}

// CloseConnectionTo is CloseConnection for a peer named by address or
// host name; it closes after what is queued for the peer.
func (e *Endpoint) CloseConnectionTo(p Peer) error {
	// Closing what does not exist (this endpoint's own address among it)
	// is a no-op, as is closing after Close: only the address's form is
	// checked.
	if ap, ok := p.Addr(); ok {
		if err := checkPeerAddr(ap); err != nil {
			return err
		}
	}
	p = e.asAddress(p)
	if !e.out.busy(p) {
		ctx, cancel := context.WithTimeout(e.ctx, e.cfg.ResolveTimeout)
		addr, err := e.closeTarget(ctx, p)
		cancel()
		if err != nil {
			return err
		}
		if !e.out.busy(PeerAt(addr)) {
			return e.closeAddr(addr)
		}
		p = PeerAt(addr)
	}
	return e.queueAndWait(context.Background(), p, &outItem{isClose: true})
}

// closeTarget is the address a close of p applies to.
func (e *Endpoint) closeTarget(ctx context.Context, p Peer) (netip.AddrPort, error) {
	if ap, ok := p.Addr(); ok {
		return ap, nil
	}
	return e.res.resolve(ctx, p)
}

// Shutdown starts closing the endpoint and returns at once with an id;
// an EventShutdownFinished with that id reports the outcome, which Close
// also returns. From the call on, sends fail with ErrClosed and nothing
// more is received. Later calls return the first call's id.
func (e *Endpoint) Shutdown() uint64 {
	e.closeOnce.Do(func() {
		e.shutdownID = e.ids.Add(1)
		e.closing.Store(true)
		e.queue.refuse()
		if e.delivery != nil {
			e.delivery.stop()
		}
		go e.runClose()
	})
	return e.shutdownID
}

// Done is closed once the endpoint finished closing.
func (e *Endpoint) Done() <-chan struct{} { return e.closed }

// NextEvent takes the oldest waiting event.
func (e *Endpoint) NextEvent() (Event, bool) { return e.events.pop() }

// SetEventNotify registers fn as SetQueueNotify does, for the event
// queue.
func (e *Endpoint) SetEventNotify(fn func(nonEmpty bool)) { e.events.setNotify(fn) }

// SetSendNotify registers fn, called (under a lock; it must not call back
// into the endpoint) with false when TrySend was refused for lack of room
// and with true once every queue that refused has drained to half its
// budget; it is called once at registration with the current state.
// SetSendNotify(nil) detaches.
func (e *Endpoint) SetSendNotify(fn func(ready bool)) { e.out.setNotify(fn) }

// LogPeerID shortens a peer id for logs.
func logPeerID(id PeerID) string { return fmt.Sprintf("%x", id[:8]) }
