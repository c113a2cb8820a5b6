package main

/*
#include "aranya_quic.h"
#include "capi.h"
*/
import "C"

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"sync"

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
	// logTo is the config's log callback, nil without one; free detaches
	// it, so that no record reaches the host after free returned.
	logTo *logCallback

	// ctx is cancelled when free starts: blocked receives and sends made
	// through this handle return ARANYA_QUIC_ERR_CLOSED at once.
	ctx    context.Context
	cancel context.CancelFunc
	// inflight counts exports using the endpoint; free waits for it. Add is
	// only called under registry.mu while the handle is registered, so no
	// Add can follow free's Wait.
	inflight sync.WaitGroup

	// fdMu guards the pipes behind aranya_quic_receive_fd,
	// aranya_quic_send_fd and aranya_quic_event_fd (nil until first asked
	// for), and fdsClosed, set once free closed them.
	fdMu      sync.Mutex
	recvPipe  *notifyPipe
	sendPipe  *notifyPipe
	eventPipe *notifyPipe
	fdsClosed bool
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

// destroy closes the endpoint and releases its resources: it wakes
// blocked calls, closes the engine gracefully, waits for calls in flight,
// then detaches and closes the notification pipes. It reports accepted
// messages that the peers did not confirm (core.ErrUnconfirmed); anything
// else that goes wrong while closing a socket changes nothing for the
// caller and is not reported.
func (e *endpoint) destroy() error {
	e.cancel()
	err := e.ep.Close()
	if !errors.Is(err, core.ErrUnconfirmed) {
		err = nil
	}
	e.inflight.Wait()
	e.closeFDs()
	e.logTo.detach(true)
	return err
}

// destroyInBackground is destroy for free_nowait: the pipes close now,
// the rest when the engine finished closing and the calls in flight
// returned. The engine logs what the peers did not confirm.
func (e *endpoint) destroyInBackground() {
	e.cancel()
	e.ep.Shutdown()
	e.closeFDs()
	e.logTo.detach(false)
	go func() {
		_ = e.ep.Close()
		e.inflight.Wait()
	}()
}

// closeFDs detaches the notifiers (after which they never run again) and
// closes the pipes; later requests for an fd get ARANYA_QUIC_ERR_CLOSED.
func (e *endpoint) closeFDs() {
	e.fdMu.Lock()
	defer e.fdMu.Unlock()
	if e.fdsClosed {
		return
	}
	e.fdsClosed = true
	if e.recvPipe != nil {
		e.ep.SetQueueNotify(nil)
		e.recvPipe.close()
	}
	if e.sendPipe != nil {
		e.ep.SetSendNotify(nil)
		e.sendPipe.close()
	}
	if e.eventPipe != nil {
		e.ep.SetEventNotify(nil)
		e.eventPipe.close()
	}
}

// pipeFD returns the read end of *pipe, creating it and registering its
// notifier with attach on first use.
func (e *endpoint) pipeFD(pipe **notifyPipe, attach func(func(bool))) (int, error) {
	e.fdMu.Lock()
	defer e.fdMu.Unlock()
	if e.fdsClosed {
		return -1, errorf(C.ARANYA_QUIC_ERR_CLOSED, "the endpoint is being freed")
	}
	if *pipe == nil {
		p, err := newNotifyPipe()
		if err != nil {
			return -1, err
		}
		*pipe = p
		attach(p.set)
	}
	return (*pipe).rfd, nil
}

// receiveFD is readable while messages are queued.
func (e *endpoint) receiveFD() (int, error) { return e.pipeFD(&e.recvPipe, e.ep.SetQueueNotify) }

// sendFD is readable while no refused non-blocking send waits for room.
func (e *endpoint) sendFD() (int, error) { return e.pipeFD(&e.sendPipe, e.ep.SetSendNotify) }

// eventFD is readable while events wait.
func (e *endpoint) eventFD() (int, error) { return e.pipeFD(&e.eventPipe, e.ep.SetEventNotify) }
