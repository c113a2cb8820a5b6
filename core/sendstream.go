package core

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

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
// Senders append frames to buf and return; one flusher at a time writes
// buf to the stream. While a write is in progress new messages gather in
// the other buffer, so a busy channel sends many messages per packet while
// an idle one sends each message as soon as it arrives.
type sendStream struct {
	key   chanKey
	str   *quic.Stream
	limit int
	stats *counters

	mu       sync.Mutex
	buf      []byte
	spare    []byte
	flushing bool
	retired  bool
	err      error
	// changed is closed and replaced whenever flushing, buf or err changes,
	// waking senders waiting for room and a drain waiting for the flush.
	changed chan struct{}
	waiters int // goroutines waiting on changed
	lastUse atomic.Uint64
}

func newSendStream(key chanKey, str *quic.Stream, header []byte, limit int, stats *counters) *sendStream {
	s := &sendStream{key: key, str: str, limit: limit, stats: stats, changed: make(chan struct{})}
	s.buf = append(make([]byte, 0, min(limit, 4096)), header...)
	return s
}

func (s *sendStream) signalLocked() {
	if s.waiters > 0 {
		close(s.changed)
		s.changed = make(chan struct{})
	}
}

// waitLocked releases s.mu until the next signal or ctx's end, and takes
// it again.
func (s *sendStream) waitLocked(ctx context.Context) error {
	wait := s.changed
	s.waiters++
	s.mu.Unlock()
	var err error
	select {
	case <-wait:
	case <-ctx.Done():
		err = ctx.Err()
	}
	s.mu.Lock()
	s.waiters--
	return err
}

// send queues msg as one frame. It returns once the whole frame is in the
// stream's buffer, waiting while the buffer is full. Admission is all or
// nothing: a message that timed out left no bytes behind, so the stream
// stays well formed and the caller may retry without a duplicate. A
// message larger than the buffer is admitted into an empty buffer.
func (s *sendStream) send(ctx *lazyContext, msg []byte) error {
	frameLen := wire.FrameHeaderLen(len(msg)) + len(msg)
	s.mu.Lock()
	for {
		switch {
		case s.err != nil:
			// This message was not written: the caller may safely retry
			// it on another connection.
			err := s.err
			s.mu.Unlock()
			if errors.Is(err, errStreamRetired) {
				return err
			}
			return fmt.Errorf("%w: %w", errStreamRetired, err)
		case s.retired:
			s.mu.Unlock()
			return errStreamRetired
		case len(s.buf) == 0 || len(s.buf)+frameLen <= s.limit:
			s.buf = wire.AppendFrameHeader(s.buf, len(msg))
			s.buf = append(s.buf, msg...)
			if !s.flushing {
				s.flushing = true
				go s.flush()
			}
			s.mu.Unlock()
			return nil
		}
		if err := s.waitLocked(ctx.get()); err != nil {
			s.mu.Unlock()
			return fmt.Errorf("%w: channel send buffer stayed full: %w", ErrTimeout, err)
		}
	}
}

// flush writes buf until it is empty. Only one flush runs per stream.
func (s *sendStream) flush() {
	for {
		s.mu.Lock()
		if len(s.buf) == 0 || s.err != nil {
			s.flushing = false
			s.signalLocked()
			s.mu.Unlock()
			return
		}
		b := s.buf
		s.buf = s.spare[:0]
		s.spare = nil
		s.signalLocked()
		s.mu.Unlock()

		_, err := s.str.Write(b)

		s.mu.Lock()
		if cap(b) <= 2*s.limit {
			s.spare = b[:0]
		}
		if err != nil {
			s.err = streamWriteError(err)
		}
		s.mu.Unlock()
	}
}

// retire stops the stream taking messages, waits until everything queued
// is written, sends FIN and waits until the peer has read it all (it
// closes its side of the stream when it reaches our FIN). It returns nil
// when the peer confirmed.
func (s *sendStream) retire(ctx context.Context) error {
	s.mu.Lock()
	s.retired = true
	for s.flushing || (len(s.buf) > 0 && s.err == nil) {
		if err := s.waitLocked(ctx); err != nil {
			s.mu.Unlock()
			s.str.CancelWrite(quic.StreamErrorCode(wire.StreamCodeShuttingDown))
			return err
		}
	}
	err := s.err
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if err := s.str.Close(); err != nil {
		return streamWriteError(err)
	}
	// The peer writes nothing; its FIN is the receipt for our data.
	stop := context.AfterFunc(ctx, func() { s.str.CancelRead(quic.StreamErrorCode(wire.StreamCodeShuttingDown)) })
	defer stop()
	var one [1]byte
	for {
		_, err := s.str.Read(one[:])
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return streamWriteError(err)
		}
	}
}

func streamWriteError(err error) error {
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
	s.signalLocked()
}

// idle reports that nothing is buffered or being written.
func (s *sendStream) idle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.flushing && len(s.buf) == 0 && !s.retired
}
