package main

/*
#include "aranya_quic.h"
*/
import "C"

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"sync"
	"syscall"

	"github.com/aranya-quic/aranya-quic/core"
)

// endpoint is what a handle refers to.
type endpoint struct {
	ep *core.Endpoint
	// maxMessageSize is the effective limit, checked before touching a
	// caller's buffer.
	maxMessageSize uint64
	// delivers is set when received messages go to the config's
	// receive_callback: the receive functions have nothing to return.
	delivers bool

	// ctx is cancelled when free starts: blocked receives and sends made
	// through this handle return ARANYA_QUIC_ERR_CLOSED at once.
	ctx    context.Context
	cancel context.CancelFunc
	// inflight counts exports using the endpoint; free waits for it. Add is
	// only called under registry.mu while the handle is registered, so no
	// Add can follow free's Wait.
	inflight sync.WaitGroup

	// fdMu guards the pipe behind aranya_quic_receive_fd.
	fdMu       sync.Mutex
	rfd, wfd   int  // -1 until the first aranya_quic_receive_fd
	pipeFilled bool // a byte is in the pipe; only touched by notify
}

// registry maps handles to endpoints. Handle numbers start at a random
// large offset and only grow, so a stale or made-up number is never
// mistaken for a live endpoint, and 0 is never valid.
var registry struct {
	// Every call looks its handle up, so lookups share the lock; a handle
	// found under the read lock was counted in flight before unregister
	// (which takes the write lock) could remove it, so free waits for it.
	mu   sync.RWMutex
	m    map[uint64]*endpoint
	base uint64 // first handle issued
	next uint64 // next handle to issue
}

func init() {
	var b [4]byte
	_, _ = rand.Read(b[:])
	// 2^40 + a random multiple of 2^8 below 2^40: far from small integers
	// and from the values a confused caller passes (fds, pointers are
	// rarely this shape), with room for 2^62 handles before overflow.
	registry.base = 1<<40 + uint64(binary.LittleEndian.Uint32(b[:]))<<8
	registry.next = registry.base
	registry.m = make(map[uint64]*endpoint)
}

// register stores e and returns its new handle.
func register(e *endpoint) uint64 {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	h := registry.next
	registry.next++
	registry.m[h] = e
	return h
}

// acquire returns the endpoint of h and marks a call in flight; the caller
// must call e.inflight.Done() when finished.
func acquire(h C.aranya_quic_t) (*endpoint, error) {
	registry.mu.RLock()
	defer registry.mu.RUnlock()
	e := registry.m[uint64(h)]
	if e == nil {
		return nil, errorf(C.ARANYA_QUIC_ERR_INVALID_HANDLE, "handle %d is not valid (0, never issued, or freed)", uint64(h))
	}
	e.inflight.Add(1)
	return e, nil
}

// lookup returns the endpoint of h, or nil, without marking a call in
// flight: for a look at its settings only.
func lookup(h C.aranya_quic_t) *endpoint {
	registry.mu.RLock()
	defer registry.mu.RUnlock()
	return registry.m[uint64(h)]
}

// unregister removes h. It reports the endpoint (nil if h is not
// registered) and whether h was ever issued.
func unregister(h uint64) (e *endpoint, issued bool) {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	e = registry.m[h]
	delete(registry.m, h)
	return e, h >= registry.base && h < registry.next
}

// destroy closes everything of an unregistered endpoint: it wakes blocked
// calls, closes the engine gracefully, waits for calls in flight, then
// detaches and closes the notification pipe.
// destroy closes the endpoint and releases its resources. It reports
// accepted messages that the peers did not confirm (core.ErrUnconfirmed);
// anything else that goes wrong while closing a socket changes nothing for
// the caller and is not reported.
func (e *endpoint) destroy() error {
	e.cancel()
	err := e.ep.Close()
	if !errors.Is(err, core.ErrUnconfirmed) {
		err = nil
	}
	e.inflight.Wait()
	e.fdMu.Lock()
	defer e.fdMu.Unlock()
	if e.rfd >= 0 {
		// After SetQueueNotify(nil) returns, notify never runs again, so
		// the pipe can be closed.
		e.ep.SetQueueNotify(nil)
		_ = syscall.Close(e.rfd)
		_ = syscall.Close(e.wfd)
		e.rfd, e.wfd = -1, -1
	}
	return err
}

// receiveFD returns the read end of the notification pipe, creating it and
// registering the queue callback on first use.
func (e *endpoint) receiveFD() (int, error) {
	e.fdMu.Lock()
	defer e.fdMu.Unlock()
	if e.rfd >= 0 {
		return e.rfd, nil
	}
	var p [2]int
	if err := syscall.Pipe2(p[:], syscall.O_NONBLOCK|syscall.O_CLOEXEC); err != nil {
		return -1, errorf(C.ARANYA_QUIC_ERR_IO, "pipe2: %v", err)
	}
	e.rfd, e.wfd = p[0], p[1]
	e.ep.SetQueueNotify(e.notify)
	return e.rfd, nil
}

// notify runs under the receive queue's lock whenever the queue turns
// non-empty or empty (and once at registration): the pipe holds one byte
// exactly while messages are queued.
func (e *endpoint) notify(nonEmpty bool) {
	var b [1]byte
	switch {
	case nonEmpty && !e.pipeFilled:
		e.pipeFilled = retryEINTR(func() (int, error) { return syscall.Write(e.wfd, b[:]) })
	case !nonEmpty && e.pipeFilled:
		e.pipeFilled = !retryEINTR(func() (int, error) { return syscall.Read(e.rfd, b[:]) })
	}
}

// retryEINTR runs a one-byte read or write until it is not interrupted and
// reports whether it moved the byte.
func retryEINTR(op func() (int, error)) bool {
	for {
		n, err := op()
		if err == syscall.EINTR {
			continue
		}
		return n == 1 && err == nil
	}
}
