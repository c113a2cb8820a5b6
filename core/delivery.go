package core

import (
	"bufio"
	"context"
	"sync"
	"sync/atomic"
)

// delivery passes received messages to Config.OnMessage instead of the
// receive queue. Each stream's reader calls it for its messages in order,
// so a channel's messages reach the callback one at a time, in order; the
// readers of different channels call it concurrently.
type delivery struct {
	fn func(ch *Channel, msg []byte)
	// mu is held shared by every call in progress; close takes it
	// exclusively, so that once close returns no call runs or starts.
	mu     sync.RWMutex
	closed bool
	// stopped is set when the endpoint starts closing, before close waits
	// for the calls in progress: no call starts after it.
	stopped atomic.Bool
}

func newDelivery(fn func(ch *Channel, msg []byte)) *delivery {
	if fn == nil {
		return nil
	}
	return &delivery{fn: fn}
}

// call runs fn unless the endpoint is closing; false means the message was
// not delivered.
func (d *delivery) call(ch *Channel, msg []byte) bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed || d.stopped.Load() {
		return false
	}
	d.fn(ch, msg)
	return true
}

// stop refuses further messages without waiting.
func (d *delivery) stop() { d.stopped.Store(true) }

// close refuses further messages and waits for the calls in progress.
func (d *delivery) close() {
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
}

// deliverFrame reads a frame's payload of n bytes and delivers it, unless
// ctx (the stream's) ended: the sender or a newer stream of the channel
// took over. A
// payload that fits the reader's buffer is passed straight from it, with no
// copy. It reports whether the message was delivered; a read error ends the
// stream.
func (c *peerConn) deliverFrame(ctx context.Context, d *delivery, src *inbound, r *bufio.Reader, n uint64) (bool, error) {
	if n <= uint64(r.Size()) {
		b, err := r.Peek(int(n))
		if err != nil {
			return false, err
		}
		if ctx.Err() != nil || !deliverGated(d, src, b) {
			return false, nil
		}
		_, err = r.Discard(int(n))
		return true, err
	}
	p, err := c.ep.readPayload(r, n)
	if err != nil {
		return false, err
	}
	defer putPayload(p)
	if ctx.Err() != nil {
		return false, nil
	}
	return deliverGated(d, src, p), nil
}

// deliverGated calls OnMessage unless the stream's gate was closed; a
// revocation waits for the calls it lets through.
func deliverGated(d *delivery, src *inbound, msg []byte) bool {
	if !src.gate.enter() {
		return false
	}
	defer src.gate.leave()
	return d.call(&src.ch, msg)
}
