package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"sync"
)

// frameSender is how a producer hands one framed message (4-byte length
// and payload) to a stream. The producer may reuse the frame's memory as
// soon as Send returns.
type frameSender interface {
	Send(frame []byte) error
	// Close sends what is still queued, then ends the stream (FIN, or a
	// TCP half close).
	Close() error
}

// newSender makes the -writer kind of sender for dst; frameLen sizes the
// expert writer's queue.
func newSender(kind string, dst io.WriteCloser, frameLen int) (frameSender, error) {
	switch kind {
	case "naive":
		return naiveSender{dst}, nil
	case "expert":
		return newExpertWriter(dst, expertQueueLimit(frameLen)), nil
	default:
		return nil, fmt.Errorf("unknown -writer %q (want naive or expert)", kind)
	}
}

// naiveSender is what most code does: one Write per message on the
// caller's goroutine.
type naiveSender struct{ w io.WriteCloser }

func (n naiveSender) Send(frame []byte) error {
	_, err := n.w.Write(frame)
	return err
}

func (n naiveSender) Close() error { return n.w.Close() }

// expertQueueLimit bounds what producers may queue ahead of the writer:
// enough that the writer always has a batch ready, small enough that the
// memory stays bounded and the drain at the end of a run is short.
func expertQueueLimit(frameLen int) int {
	return max(256<<10, 4*frameLen)
}

// expertWriter is what an experienced Go programmer puts in front of a
// stream to send many small messages: producers append frames to a
// mutex-protected byte queue and return at once; one writer goroutine
// takes the whole queue at a time, pushes it through a 64 KiB
// bufio.Writer and flushes only when the queue has run dry, so frames
// coalesce into large writes while the stream is busy and nothing waits
// when it is idle. Producers block (backpressure) while the queue holds
// limit bytes or more. Two buffers swap between producers and the writer,
// so after warm-up nothing is allocated per message.
type expertWriter struct {
	dst   io.WriteCloser
	limit int

	mu      sync.Mutex
	ready   sync.Cond // the writer waits here for frames
	room    sync.Cond // producers wait here for the queue to drain
	queue   []byte
	closing bool
	err     error

	done chan struct{}
}

func newExpertWriter(dst io.WriteCloser, limit int) *expertWriter {
	e := &expertWriter{dst: dst, limit: limit, done: make(chan struct{})}
	e.ready.L = &e.mu
	e.room.L = &e.mu
	go e.run()
	return e
}

var errWriterClosed = errors.New("expert writer closed")

func (e *expertWriter) Send(frame []byte) error {
	e.mu.Lock()
	for len(e.queue) >= e.limit && e.err == nil && !e.closing {
		e.room.Wait()
	}
	switch {
	case e.err != nil:
		err := e.err
		e.mu.Unlock()
		return err
	case e.closing:
		e.mu.Unlock()
		return errWriterClosed
	}
	// Only a transition from empty can find the writer parked.
	wake := len(e.queue) == 0
	e.queue = append(e.queue, frame...)
	e.mu.Unlock()
	if wake {
		e.ready.Signal()
	}
	return nil
}

func (e *expertWriter) Close() error {
	e.mu.Lock()
	e.closing = true
	e.mu.Unlock()
	e.ready.Signal()
	e.room.Broadcast()
	<-e.done
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.err
}

func (e *expertWriter) fail(err error) {
	e.mu.Lock()
	if e.err == nil {
		e.err = err
	}
	e.mu.Unlock()
	e.room.Broadcast()
}

func (e *expertWriter) run() {
	defer close(e.done)
	bw := bufio.NewWriterSize(e.dst, 64<<10)
	var spare []byte
	for {
		e.mu.Lock()
		if len(e.queue) == 0 && bw.Buffered() > 0 {
			e.mu.Unlock()
			if err := bw.Flush(); err != nil {
				e.fail(err)
				return
			}
			continue
		}
		for len(e.queue) == 0 && !e.closing {
			e.ready.Wait()
		}
		if len(e.queue) == 0 {
			e.mu.Unlock()
			break
		}
		batch := e.queue
		e.queue = spare[:0]
		e.mu.Unlock()
		e.room.Broadcast()
		// A batch larger than the buffer goes straight to the stream
		// (bufio writes it through when it is empty), so big messages
		// are not copied twice.
		if _, err := bw.Write(batch); err != nil {
			e.fail(err)
			return
		}
		spare = batch
	}
	if err := bw.Flush(); err != nil {
		e.fail(err)
		return
	}
	if err := e.dst.Close(); err != nil {
		e.fail(err)
	}
}
