package core

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// message is one received message waiting in the queue. src is shared by
// every message of its stream.
type message struct {
	src     *inbound
	payload []byte
}

// inbound is where a stream's messages come from: their channel, the
// stream's gate (nil for none), whose messages are not queued once it is
// closed, and the connection, which counts each message as it is added
// (nil: not counted), so that whoever takes a message finds it counted.
type inbound struct {
	ch   Channel
	gate *readGate
	conn *peerConn
}

// recvQueue is the FIFO of received messages across all peers. It is
// bounded in bytes and messages; a stream reader that finds it full waits,
// which stops reading its QUIC stream, so flow control pushes back on the
// sender instead of anything being dropped.
type recvQueue struct {
	maxBytes uint64
	maxMsgs  int

	mu     sync.Mutex
	buf    []message // ring buffer
	head   int
	n      int
	bytes  uint64
	closed bool
	// refusing stops new messages while the endpoint closes: what a
	// closing endpoint would queue only to drop is better left
	// unconfirmed, so its sender hears of it.
	refusing bool
	// space and data are doorbells (capacity 1), rung without blocking
	// when a pop makes room or a push adds a message, and closed when the
	// queue closes. A waiter that takes the ring and leaves work behind
	// rings again for the next waiter, so one ring wakes them in turn
	// without allocating a channel per message.
	space chan struct{}
	data  chan struct{}
	// Waiter counts let push and pop skip ringing when nobody waits.
	spaceWaiters, dataWaiters int
	notify                    func(nonEmpty bool)
}

func newRecvQueue(maxBytes uint64, maxMsgs int) *recvQueue {
	initial := min(maxMsgs, 64)
	return &recvQueue{
		maxBytes: maxBytes,
		maxMsgs:  maxMsgs,
		buf:      make([]message, initial),
		space:    make(chan struct{}, 1),
		data:     make(chan struct{}, 1),
	}
}

// tryPush adds m if it fits now; false when the queue is full or closed
// (push then waits, or reports the close).
func (q *recvQueue) tryPush(m message) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return !q.closed && !q.refusing && m.src.gate.open() && q.addLocked(m)
}

// errRevoked means the message's stream was revoked: it is not queued.
var errRevoked = errors.New("the stream's peer or team was revoked")

// refuse makes every later push fail with ErrClosed; receivers still get
// what is queued until close.
func (q *recvQueue) refuse() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.refusing = true
	if q.spaceWaiters > 0 {
		close(q.space) // wake waiting pushers to fail; close makes a new bell
		q.space = make(chan struct{}, 1)
	}
}

// push adds m, waiting while the queue is full. A message always fits an
// empty queue, because the queue limit is at least the message limit.
func (q *recvQueue) push(ctx context.Context, m message) error {
	for {
		q.mu.Lock()
		if q.closed || q.refusing {
			q.mu.Unlock()
			return ErrClosed
		}
		// Checked before every attempt, not only while waiting: a push
		// woken by room and by ctx at once must not add the message.
		if err := ctx.Err(); err != nil {
			q.mu.Unlock()
			return err
		}
		// Under the lock, like purge: a revocation that purged has closed
		// the gate first, so nothing of it is added after.
		if !m.src.gate.open() {
			q.mu.Unlock()
			return errRevoked
		}
		if q.addLocked(m) {
			q.mu.Unlock()
			return nil
		}
		wait := q.space
		q.spaceWaiters++
		q.mu.Unlock()
		var err error
		select {
		case <-wait:
		case <-ctx.Done():
			err = ctx.Err()
		}
		q.mu.Lock()
		q.spaceWaiters--
		q.mu.Unlock()
		if err != nil {
			return err
		}
	}
}

// addLocked appends m when it fits and rings whoever waits for it.
func (q *recvQueue) addLocked(m message) bool {
	size := uint64(len(m.payload))
	if q.n != 0 && (q.n >= q.maxMsgs || q.bytes+size > q.maxBytes) {
		return false
	}
	q.append(m)
	q.bytes += size
	if c := m.src.conn; c != nil {
		c.countReceived(size)
	}
	if q.n == 1 && q.notify != nil {
		q.notify(true)
	}
	if q.dataWaiters > 0 {
		ring(q.data)
	}
	if q.spaceWaiters > 0 && q.n < q.maxMsgs && q.bytes < q.maxBytes {
		ring(q.space) // room left for the next waiting pusher
	}
	return true
}

func (q *recvQueue) append(m message) {
	if q.n == len(q.buf) {
		grown := make([]message, min(max(2*len(q.buf), 1), q.maxMsgs))
		k := copy(grown, q.buf[q.head:])
		copy(grown[k:], q.buf[:q.head])
		q.buf, q.head = grown, 0
	}
	i := q.head + q.n
	if i >= len(q.buf) {
		i -= len(q.buf)
	}
	q.buf[i] = m
	q.n++
}

// pop copies the oldest message into dst. It returns ErrWouldBlock when
// empty and ErrBufferTooSmall (with the needed size) without removing the
// message when dst is short.
func (q *recvQueue) pop(dst []byte) (Channel, int, error) {
	var one takenOne
	_, need, err := q.popBatch(dst, 1, one.take)
	return one.result(need, err)
}

// popWait is pop that waits for a message until ctx ends or the queue
// closes.
func (q *recvQueue) popWait(ctx context.Context, dst []byte) (Channel, int, error) {
	var one takenOne
	_, need, err := q.popBatchWait(ctx, dst, 1, one.take)
	return one.result(need, err)
}

// takenOne collects the message of a single-message pop.
type takenOne struct {
	ch Channel
	n  int
}

func (t *takenOne) take(ch *Channel, _, n int) { t.ch, t.n = *ch, n }

func (t *takenOne) result(need int, err error) (Channel, int, error) {
	if errors.Is(err, ErrBufferTooSmall) {
		return Channel{}, need, err
	}
	return t.ch, t.n, err
}

// popBatch copies up to max of the oldest messages into dst, one after
// another, while each fits in what is left of dst, calling each (under the
// lock) for every message taken with its offset and length in dst. It
// returns the count taken; ErrWouldBlock when the queue is empty. When the
// oldest message alone is longer than dst it stays queued and popBatch
// returns ErrBufferTooSmall with its length as need.
func (q *recvQueue) popBatch(dst []byte, max int, each func(ch *Channel, off, n int)) (count, need int, err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.popBatchLocked(dst, max, each)
}

func (q *recvQueue) popBatchLocked(dst []byte, max int, each func(ch *Channel, off, n int)) (count, need int, err error) {
	if q.closed {
		return 0, 0, ErrClosed
	}
	if q.n == 0 {
		return 0, 0, ErrWouldBlock
	}
	if first := len(q.buf[q.head].payload); first > len(dst) {
		return 0, first, fmt.Errorf("%w: need %d bytes, have %d", ErrBufferTooSmall, first, len(dst))
	}
	off := 0
	for count < max && q.n > 0 && len(q.buf[q.head].payload) <= len(dst)-off {
		ch := &q.buf[q.head].src.ch
		n := q.takeLocked(dst[off:])
		each(ch, off, n)
		off += n
		count++
	}
	q.tookLocked()
	return count, 0, nil
}

// popBatchWait is popBatch that waits for a message until ctx ends or the
// queue closes.
func (q *recvQueue) popBatchWait(ctx context.Context, dst []byte, max int, each func(ch *Channel, off, n int)) (count, need int, err error) {
	for {
		q.mu.Lock()
		count, need, err = q.popBatchLocked(dst, max, each)
		if !errors.Is(err, ErrWouldBlock) {
			q.mu.Unlock()
			return count, need, err
		}
		wait := q.data
		q.dataWaiters++
		q.mu.Unlock()
		var waitErr error
		select {
		case <-wait:
		case <-ctx.Done():
			waitErr = ctx.Err()
		}
		q.mu.Lock()
		q.dataWaiters--
		q.mu.Unlock()
		if waitErr != nil {
			return 0, 0, waitErr
		}
	}
}

// takeLocked removes the oldest message, copying its payload into dst,
// which the caller made long enough.
func (q *recvQueue) takeLocked(dst []byte) int {
	m := &q.buf[q.head]
	n := copy(dst, m.payload)
	putPayload(m.payload)
	*m = message{}
	if q.head++; q.head == len(q.buf) {
		q.head = 0
	}
	q.n--
	q.bytes -= uint64(n)
	return n
}

// tookLocked tells waiters and the notify hook what taking messages
// changed.
func (q *recvQueue) tookLocked() {
	if q.n == 0 {
		q.head = 0
		if q.notify != nil {
			q.notify(false)
		}
		// Give back the memory a burst grew the ring to.
		if len(q.buf) > 1024 {
			q.buf = make([]message, 64)
		}
	}
	if q.spaceWaiters > 0 {
		ring(q.space)
	}
	if q.n > 0 && q.dataWaiters > 0 {
		ring(q.data) // more for the next waiting receiver
	}
}

// purge removes the queued messages drop selects, keeping the order of
// the rest, and returns how many it removed.
func (q *recvQueue) purge(drop func(m *message) bool) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed || q.n == 0 {
		return 0
	}
	kept := make([]message, len(q.buf))
	k := 0
	removed := 0
	for i := 0; i < q.n; i++ {
		m := &q.buf[(q.head+i)%len(q.buf)]
		if drop(m) {
			q.bytes -= uint64(len(m.payload))
			putPayload(m.payload)
			removed++
			continue
		}
		kept[k] = *m
		k++
	}
	if removed == 0 {
		return 0
	}
	q.buf, q.head, q.n = kept, 0, k
	q.tookLocked()
	return removed
}

// setNotify installs fn and calls it with the current state, under the
// lock, so the caller's view never misses a transition.
func (q *recvQueue) setNotify(fn func(nonEmpty bool)) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.notify = fn
	if fn != nil {
		fn(q.n > 0 && !q.closed)
	}
}

// close wakes every waiter; queued messages are dropped, and their count
// returned.
func (q *recvQueue) close() (dropped int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return 0
	}
	dropped = q.n
	q.closed = true
	q.buf, q.n, q.head, q.bytes = nil, 0, 0, 0 // the payloads go to the collector, not the pool
	if q.notify != nil {
		// Readable at close, so a poller wakes and learns of the close from
		// its next receive call.
		q.notify(true)
	}
	close(q.space)
	close(q.data)
	return dropped
}

func (q *recvQueue) depth() (msgs, bytes uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return uint64(q.n), q.bytes
}

// ring signals a doorbell without blocking; a pending ring is enough.
func ring(bell chan struct{}) {
	select {
	case bell <- struct{}{}:
	default:
	}
}
