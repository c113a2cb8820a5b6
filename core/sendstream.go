package core

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/aranya-quic/aranya-quic/core/wire"
)

// errStreamRetired means the stream stopped taking messages (its
// connection is draining) before this message was written; the caller
// retries on the connection that replaced it.
var errStreamRetired = errors.New("channel stream retired")

// chanKey identifies a channel stream on a connection.
type chanKey struct {
	kind     Kind
	teamID   TeamID
	label    string
	syncType uint32
}

// sendStream is our side of one channel: a QUIC stream that carries the
// channel header and then every message of the channel, in order.
//
// A message is handed to quic-go at once when the stream has flow-control
// credit and no write is in progress (TryWriteAll queues it without
// blocking; quic-go then packs whatever has queued into as few packets as
// it can). Otherwise it is appended to buf, which one flusher goroutine
// writes with blocking writes; while it writes, further messages gather in
// buf. A large message on an idle stream is written from the caller's
// memory. Admission is all or nothing, so a Send that fails left no part of
// its frame behind, unless the stream itself broke.
//
// The flusher stays parked for a while after it ran out of work, so a
// stream that keeps flushing reuses one goroutine, and an idle stream (there
// may be thousands) holds none.
type sendStream struct {
	key   chanKey
	str   *quic.Stream
	limit int
	stats *counters
	link  *orderLink // the channel's turn; finished by end
	// onBroken runs (in its own goroutine) when a write first fails, so
	// that the stream is settled and counted even if no later send comes.
	onBroken func(*sendStream)

	// acked is the receiver's latest receipt count; ackDone closes when the
	// receiver's direction ended, with receipt set when it ended with FIN
	// (everything was read).
	acked   atomic.Uint64
	ackDone chan struct{}
	receipt atomic.Bool
	endOnce sync.Once

	mu    sync.Mutex
	buf   []byte
	spare []byte
	// pending is the rest of a frame that a direct write left half written;
	// the flusher writes it before buf.
	pending  []byte
	flushing bool // a write (flusher or a large direct write) is in progress
	retired  bool
	err      error
	// waiting holds a bell for each goroutine waiting for flushing, buf or
	// err to change (senders waiting for room, a drain waiting for the
	// flush). The bells come from a pool and are reused, so waking a waiter
	// allocates nothing.
	waiting []chan struct{}
	// parked says the flusher goroutine waits on kick (capacity 1): true
	// gives it the stream to flush (the next flush wakes it instead of
	// starting a goroutine), false ends it.
	parked       bool
	kick         chan bool
	queuedWrites int    // messages handed to quic-go since the flusher last ran
	accepted     uint64 // messages send admitted
	lastUse      atomic.Uint64
	// verdictPending holds the first message back until the peer, which
	// authorizes channels by team, accepted the stream: its first receipt
	// count, or a reset with NOT_AUTHORIZED (then err says so).
	verdictPending bool
}

// newSendStream makes the stream of a channel; awaitVerdict says the peer
// authorizes channels, so the header goes first, alone, and messages wait
// for the peer's verdict.
func newSendStream(key chanKey, str *quic.Stream, header []byte, limit int, stats *counters, link *orderLink, awaitVerdict bool) *sendStream {
	s := &sendStream{key: key, str: str, limit: limit, stats: stats, link: link, ackDone: make(chan struct{}), verdictPending: awaitVerdict}
	s.buf = append(make([]byte, 0, min(limit, 4096)), header...)
	go s.readAcks()
	return s
}

// readAcks follows the receiver's receipt counts until it finishes its
// direction (FIN: it read everything we sent) or the stream fails.
func (s *sendStream) readAcks() {
	defer close(s.ackDone)
	r := bufio.NewReaderSize(s.str, 64)
	cause := errPeerStopped
	first := true
	for {
		n, err := wire.ReadAck(r)
		if errors.Is(err, io.EOF) {
			s.receipt.Store(true)
			break
		}
		if err != nil {
			if isNotAuthorized(err) {
				cause = err
			}
			break
		}
		if first {
			first = false
			s.acceptedByPeer()
		}
		if n > s.acked.Load() {
			s.acked.Store(n)
		}
	}
	// The receiver ended its direction (or the stream failed) before we
	// retired the stream: it stopped reading it (an oversize frame from
	// an older or hostile sender, a reset, the connection's end, a refusal
	// of our peer id). No write may be in progress to notice, so the
	// stream is settled from here.
	s.mu.Lock()
	if !s.retired {
		s.breakLocked(cause)
	}
	s.signalLocked() // senders waiting for a verdict see the error
	s.mu.Unlock()
}

// acceptedByPeer records the peer's verdict: its first receipt count.
func (s *sendStream) acceptedByPeer() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.verdictPending {
		s.verdictPending = false
		s.signalLocked()
	}
}

// isNotAuthorized reports a stream the peer reset or stopped because it
// does not allow us on the stream's team.
func isNotAuthorized(err error) bool {
	var se *quic.StreamError
	return errors.As(err, &se) && se.Remote && uint64(se.ErrorCode) == wire.StreamCodeNotAuthorized
}

// sendHeaderLocked hands the header (all buf holds before the verdict) to
// quic-go, or to the flusher when there is no credit.
func (s *sendStream) sendHeaderLocked() {
	if s.flushing || len(s.buf) == 0 {
		return
	}
	switch err := s.str.TryWriteAll(s.buf); {
	case err == nil:
		s.buf = s.buf[:0]
	case errors.Is(err, quic.ErrWouldBlock):
		s.startFlushLocked()
	default:
		s.breakLocked(err)
	}
}

// errPeerStopped means the receiver ended a channel stream we had not
// retired.
var errPeerStopped = errors.New("the peer stopped reading the channel's stream")

// breakLocked records a failed write; the first one hands the stream to
// onBroken.
func (s *sendStream) breakLocked(err error) {
	if s.err != nil {
		return
	}
	s.err = streamWriteError(err)
	s.releaseFlusherLocked()
	if s.onBroken != nil {
		go s.onBroken(s)
	}
}

// unconfirmed is how many admitted messages the receiver has not
// confirmed. A count above what we sent (a confused or hostile peer)
// confirms no more than was sent.
func (s *sendStream) unconfirmed() uint64 {
	s.mu.Lock()
	accepted := s.accepted
	s.mu.Unlock()
	return accepted - min(s.acked.Load(), accepted)
}

// end finishes the stream's turn in its channel's order once; it returns
// the messages it leaves unconfirmed, and ok for the call that ended it.
func (s *sendStream) end() (unconfirmed uint64, ok bool) {
	s.endOnce.Do(func() {
		unconfirmed, ok = s.unconfirmed(), true
		s.link.finish()
	})
	return unconfirmed, ok
}

// bells are the wake-up channels of waitLocked (capacity 1; a chan is
// pointer-shaped, so the pool stores it without allocating).
var bells = sync.Pool{New: func() any { return make(chan struct{}, 1) }}

// signalLocked wakes every goroutine in waitLocked.
func (s *sendStream) signalLocked() {
	for _, bell := range s.waiting {
		bell <- struct{}{} // rung at most once per wait, so never blocks
	}
	clear(s.waiting)
	s.waiting = s.waiting[:0]
}

// waitLocked releases s.mu until the next signal or ctx's end, and takes
// it again. A wait that was signalled returns nil even if ctx ended at the
// same time: the caller looks at the stream again first.
func (s *sendStream) waitLocked(ctx context.Context) error {
	bell := bells.Get().(chan struct{})
	s.waiting = append(s.waiting, bell)
	s.mu.Unlock()
	var err error
	select {
	case <-bell:
		s.mu.Lock()
	case <-ctx.Done():
		s.mu.Lock()
		if i := slices.Index(s.waiting, bell); i >= 0 {
			s.waiting = slices.Delete(s.waiting, i, i+1)
			err = ctx.Err()
		} else {
			<-bell // rung after all: empty it before it goes back
		}
	}
	bells.Put(bell)
	return err
}

// send queues msg as one frame; see sendStream. It returns once quic-go
// or the stream's buffer holds the whole frame, waiting while the buffer is
// full.
func (s *sendStream) send(ctx *lazyContext, msg []byte) error {
	frameLen := wire.FrameHeaderLen(len(msg)) + len(msg)
	if ctx.noWait && len(msg) >= directWriteMin {
		return errMustWait // written in place, which blocks
	}
	s.mu.Lock()
	for {
		switch {
		case s.err != nil:
			// This message was not written: the caller may safely retry
			// it on another stream, unless the peer refused us.
			err := s.err
			s.mu.Unlock()
			if errors.Is(err, errStreamRetired) || errors.Is(err, ErrNotAuthorized) {
				return err
			}
			return fmt.Errorf("%w: %w", errStreamRetired, err)
		case s.retired:
			s.mu.Unlock()
			return errStreamRetired
		case s.verdictPending:
			s.sendHeaderLocked()
			if s.err != nil {
				continue
			}
			if ctx.noWait {
				s.mu.Unlock()
				return errMustWait
			}
			if err := s.waitLocked(ctx.get()); err != nil {
				s.mu.Unlock()
				return fmt.Errorf("%w: waiting for the peer to accept the channel: %w", ErrTimeout, err)
			}
			continue
		case !s.flushing && len(msg) >= directWriteMin:
			s.flushing = true
			prefix := wire.AppendFrameHeader(s.takeBufLocked(), len(msg))
			s.mu.Unlock()
			return s.writeDirect(ctx, prefix, msg)
		case !s.flushing && (len(s.buf)+frameLen > tryWriteMax || s.burstLocked()):
			// Back-to-back or large sends: quic-go would queue them in one
			// growing frame (copied on every growth); the flusher's
			// blocking writes hand them over in batches instead.
			s.buf = wire.AppendFrameHeader(s.buf, len(msg))
			s.buf = append(s.buf, msg...)
			s.accepted++
			s.startFlushLocked()
			s.mu.Unlock()
			return nil
		case !s.flushing:
			s.buf = wire.AppendFrameHeader(s.buf, len(msg))
			s.buf = append(s.buf, msg...)
			err := s.str.TryWriteAll(s.buf)
			switch {
			case err == nil:
				s.buf = s.buf[:0]
			case errors.Is(err, quic.ErrWouldBlock):
				// No credit now: the flusher waits for it.
				s.startFlushLocked()
			default:
				s.buf = s.buf[:len(s.buf)-frameLen]
				s.breakLocked(err)
				s.mu.Unlock()
				return fmt.Errorf("%w: %w", errStreamRetired, s.err)
			}
			s.accepted++
			s.mu.Unlock()
			return nil
		case len(s.buf) == 0 || len(s.buf)+frameLen <= s.limit:
			s.buf = wire.AppendFrameHeader(s.buf, len(msg))
			s.buf = append(s.buf, msg...)
			s.accepted++
			s.mu.Unlock()
			return nil
		}
		if ctx.noWait {
			s.mu.Unlock()
			return errMustWait
		}
		if err := s.waitLocked(ctx.get()); err != nil {
			s.mu.Unlock()
			return fmt.Errorf("%w: channel send buffer stayed full: %w", ErrTimeout, err)
		}
	}
}

// maxQueuedWrites bounds how many messages in a row are handed to quic-go
// without waiting for it to send them: it keeps queued data in one frame
// that it grows (and copies) as more arrives, so a burst goes through the
// flusher, whose blocking writes pace themselves to the packer.
const maxQueuedWrites = 8

// burstLocked reports whether this send continues a burst: too many
// messages were queued since the flusher last caught up.
func (s *sendStream) burstLocked() bool {
	if s.queuedWrites >= maxQueuedWrites {
		s.queuedWrites = 0
		return true
	}
	s.queuedWrites++
	return false
}

// tryWriteMax bounds what is handed to quic-go without blocking: it copies
// such data into a frame it grows, while a blocking write of a large
// buffer is sent from that buffer in place.
const tryWriteMax = 16 << 10

// directWriteMin is the message size from which an idle stream writes the
// message from the caller's memory rather than copying it. Measured
// through the C API, copying wins for 64 KiB messages (the caller's
// thread never waits inside quic-go) and the direct write for 1 MiB.
const directWriteMin = 256 << 10

// takeBufLocked hands the buffer's contents to a writer and leaves an
// empty buffer (the spare, when there is one) in its place.
func (s *sendStream) takeBufLocked() []byte {
	b := s.buf
	s.buf = s.spare[:0]
	s.spare = nil
	return b
}

// writeDirect writes prefix (what was buffered, then msg's frame header)
// and msg, holding the writer role, with the send's deadline. If the
// deadline passes before a byte was written the message is refused with
// ErrTimeout; once part of it is written the rest is copied and finished in
// the background, and the message counts as accepted.
func (s *sendStream) writeDirect(ctx *lazyContext, prefix, msg []byte) error {
	deadline := ctx.writeDeadline()
	if !deadline.IsZero() {
		_ = s.str.SetWriteDeadline(deadline)
	}
	n1, err := s.str.Write(prefix)
	n2 := 0
	if err == nil {
		n2, err = s.str.Write(msg)
	}
	if !deadline.IsZero() {
		_ = s.str.SetWriteDeadline(time.Time{})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case err == nil:
		if cap(prefix) <= 2*s.limit {
			s.spare = prefix[:0]
		}
		s.accepted++
		s.continueOrIdleLocked(nil)
		return nil
	case errors.Is(err, os.ErrDeadlineExceeded) && n1 < len(prefix)-wire.FrameHeaderLen(len(msg)):
		// Not even what was buffered before (the channel header, at most)
		// went out: give it back and refuse the message.
		rest := append(prefix[n1:len(prefix)-wire.FrameHeaderLen(len(msg))], s.buf...)
		s.buf = rest
		s.continueOrIdleLocked(nil)
		return fmt.Errorf("%w: stream blocked by flow control", ErrTimeout)
	case errors.Is(err, os.ErrDeadlineExceeded):
		// Part of the frame is out: the rest must follow before anything
		// else, so it goes first, in a copy the caller does not own.
		rest := make([]byte, 0, len(prefix)-n1+len(msg)-n2)
		rest = append(rest, prefix[n1:]...)
		rest = append(rest, msg[n2:]...)
		s.accepted++
		s.continueOrIdleLocked(rest)
		return nil
	default:
		s.breakLocked(err)
		s.flushing = false
		s.signalLocked()
		return fmt.Errorf("%w: %w", errStreamRetired, s.err)
	}
}

// continueOrIdleLocked ends a write: with pending bytes or buffered frames
// a flusher takes over, otherwise the stream goes idle.
func (s *sendStream) continueOrIdleLocked(pending []byte) {
	if len(pending) > 0 || len(s.buf) > 0 {
		s.pending = pending
		s.startFlushLocked()
		return
	}
	s.flushing = false
	s.signalLocked()
}

// startFlushLocked makes the flusher write what is pending and buffered:
// the parked one if there is one, otherwise a new one.
func (s *sendStream) startFlushLocked() {
	s.flushing = true
	if s.parked {
		s.parked = false
		s.kick <- true
		return
	}
	go s.flush()
}

// releaseFlusherLocked ends a parked flusher now: the stream takes no
// more messages.
func (s *sendStream) releaseFlusherLocked() {
	if s.parked {
		s.parked = false
		s.kick <- false
	}
}

// flusherLinger is how long a flusher with nothing to write stays parked
// before its goroutine ends: long enough to span the gaps of a busy
// stream, short enough that idle streams hold no goroutines.
const flusherLinger = 250 * time.Millisecond

// flush writes pending, then buf until both are empty, then parks for
// flusherLinger in case more comes. Only one flusher runs per stream;
// flushing is set while it has work.
func (s *sendStream) flush() {
	var linger *time.Timer
	defer func() {
		if linger != nil {
			linger.Stop()
		}
	}()
	s.mu.Lock()
	for {
		b, owned := s.pending, false
		s.pending = nil
		if len(b) == 0 && s.err == nil && len(s.buf) > 0 {
			b, owned = s.takeBufLocked(), true
			s.signalLocked() // room in buf
		}
		if len(b) == 0 || s.err != nil {
			s.flushing = false
			s.signalLocked()
			if s.err != nil || s.retired {
				s.mu.Unlock()
				return
			}
			if !s.park(&linger) {
				return
			}
			continue
		}
		s.mu.Unlock()

		_, err := s.str.Write(b)

		s.mu.Lock()
		if owned && cap(b) <= 2*s.limit {
			s.spare = b[:0]
		}
		if err != nil {
			s.breakLocked(err)
		}
	}
}

// park releases s.mu and waits until the flusher is given the stream
// again (true, with s.mu held), or is released or stayed idle for
// flusherLinger (false: the flusher ends).
func (s *sendStream) park(linger **time.Timer) bool {
	if s.kick == nil {
		s.kick = make(chan bool, 1)
	}
	s.parked = true
	s.mu.Unlock()
	if *linger == nil {
		*linger = time.NewTimer(flusherLinger)
	} else {
		(*linger).Reset(flusherLinger)
	}
	var work bool
	select {
	case work = <-s.kick:
	case <-(*linger).C:
		s.mu.Lock()
		timedOut := s.parked
		s.parked = false
		s.mu.Unlock()
		if timedOut {
			return false
		}
		// Kicked just as the time ran out: the kick is there to take.
		work = <-s.kick
	}
	if work {
		s.mu.Lock()
	}
	return work
}

// retire stops the stream taking messages, waits until everything queued
// is written, sends FIN and waits until the peer has read it all (it sends
// its last receipt count and closes its direction when it reaches our
// FIN). It returns nil when the peer confirmed every message; otherwise
// the stream is reset and the count of unconfirmed messages is left for
// end.
func (s *sendStream) retire(ctx context.Context) error {
	s.mu.Lock()
	s.retired = true
	if !s.flushing && len(s.buf) > 0 && s.err == nil {
		s.startFlushLocked()
	} else {
		s.releaseFlusherLocked()
	}
	for s.flushing || (len(s.buf) > 0 && s.err == nil) {
		if err := s.waitLocked(ctx); err != nil {
			s.mu.Unlock()
			s.abandon()
			return fmt.Errorf("%w: flushing the channel's stream: %w", ErrTimeout, err)
		}
	}
	err := s.err
	s.mu.Unlock()
	if err == nil {
		if cerr := s.str.Close(); cerr != nil {
			err = streamWriteError(cerr)
		}
	}
	// Even a stream that broke (the peer stopped reading it) may still get
	// the peer's final receipt count, which says what it did read.
	select {
	case <-s.ackDone:
	case <-ctx.Done():
		s.abandon()
		return fmt.Errorf("%w: waiting for the peer's receipt: %w", ErrTimeout, ctx.Err())
	}
	if err != nil {
		return err
	}
	if !s.receipt.Load() {
		return fmt.Errorf("%w: stream ended without the peer's receipt", ErrConnection)
	}
	if n := s.unconfirmed(); n > 0 {
		return fmt.Errorf("%w: the peer read the stream to its end but confirmed %d message(s) fewer than sent", ErrConnection, n)
	}
	return nil
}

// abandon resets both directions and waits for the receipt reader to
// stop, so that the final count is settled.
func (s *sendStream) abandon() {
	s.str.CancelWrite(quic.StreamErrorCode(wire.StreamCodeShuttingDown))
	s.str.CancelRead(quic.StreamErrorCode(wire.StreamCodeShuttingDown))
	<-s.ackDone
}

func streamWriteError(err error) error {
	if isNotAuthorized(err) {
		return fmt.Errorf("%w: the peer refused the channel's stream: %w", ErrNotAuthorized, err)
	}
	return fmt.Errorf("%w: stream: %w", ErrConnection, err)
}

// fail makes the stream refuse new messages after its connection died, so
// senders move to a new connection; buffered data is lost.
func (s *sendStream) fail() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = errStreamRetired
	}
	s.buf = nil
	s.releaseFlusherLocked()
	s.signalLocked()
}

// idle reports that nothing is buffered or being written.
func (s *sendStream) idle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.flushing && len(s.buf) == 0 && !s.retired
}

// broken reports that a write failed (not that the stream was retired).
func (s *sendStream) broken() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err != nil && !errors.Is(s.err, errStreamRetired)
}
