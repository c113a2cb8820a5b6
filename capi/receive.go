package main

/*
#include "aranya_quic.h"
#include "capi.h"
*/
import "C"

import (
	"errors"
	"math"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/aranya-quic/aranya-quic/core"
)

// The blocking receives (aranya_quic_receive_timeout and
// aranya_quic_receive_batch) wait in C, in wait.c; what they do between
// waits is aq_receive_try.

// receiveFn names the public function aq_receive_try runs for, in errors.
func receiveFn(id C.int) string {
	if id == C.AQ_FN_RECEIVE_BATCH {
		return "aranya_quic_receive_batch"
	}
	return "aranya_quic_receive_timeout"
}

// aq_receive_try takes what is queued without waiting: one message (into
// one and oneLen) or, for AQ_FN_RECEIVE_BATCH, up to maxMsgs (into msgs and
// outCount). When the queue is empty and park is not NULL it registers
// the calling thread as a sleeper, under the queue's lock, stores the
// futex value to wait on in *seq, and hands the thread a reference to the
// waiter in *park (once: a thread that already holds one passes it back).
// A thread that holds a reference has waited: if its handle is gone, free
// ended the wait, which is ARANYA_QUIC_ERR_CLOSED.
//
//export aq_receive_try
func aq_receive_try(ep C.aranya_quic_t, fnID C.int, buf *C.uint8_t, bufLen C.size_t, msgs *C.aranya_quic_message, maxMsgs C.size_t, outCount *C.size_t, one *C.aranya_quic_channel, oneLen *C.size_t, park **C.aq_waiter, seq *C.uint32_t) (rc C.int32_t) {
	fn := receiveFn(fnID)
	defer recoverPanic(fn, &rc)
	if fnID == C.AQ_FN_RECEIVE_BATCH {
		return receiveBatch(fn, ep, buf, bufLen, msgs, maxMsgs, outCount, park, seq)
	}
	return receiveOne(fn, ep, buf, bufLen, one, oneLen, park, seq)
}

// acquireReceiver is acquire for the receives: a thread that holds a
// reference to the waiter (*park set) has waited, and a handle gone since
// was freed under it.
func acquireReceiver(ep C.aranya_quic_t, park **C.aq_waiter) (*endpoint, error) {
	e, err := acquire(ep)
	if err != nil && park != nil && *park != nil {
		return nil, errorf(C.ARANYA_QUIC_ERR_CLOSED, "the endpoint was freed while waiting")
	}
	return e, err
}

// parkFunc returns what the queue calls, under its lock, when it is empty:
// nil when the caller does not wait.
func (e *endpoint) parkFunc(park **C.aq_waiter, seq *C.uint32_t) func() {
	if park == nil {
		return nil
	}
	return func() {
		w := e.waiter
		if *park == nil {
			atomic.AddUint32((*uint32)(unsafe.Pointer(&w.refs)), 1)
			*park = w
		}
		atomic.AddUint32((*uint32)(unsafe.Pointer(&w.sleepers)), 1)
		*seq = C.uint32_t(atomic.LoadUint32((*uint32)(unsafe.Pointer(&w.seq))))
	}
}

func receiveOne(fn string, ep C.aranya_quic_t, buf *C.uint8_t, bufLen C.size_t, outChannel *C.aranya_quic_channel, outLen *C.size_t, park **C.aq_waiter, seq *C.uint32_t) C.int32_t {
	if outChannel == nil {
		return fail(fn, errorf(C.ARANYA_QUIC_ERR_INVALID_ARGUMENT, "out_channel is NULL"))
	}
	if outLen == nil {
		return fail(fn, errorf(C.ARANYA_QUIC_ERR_INVALID_ARGUMENT, "out_len is NULL"))
	}
	dst, err := recvBuffer(buf, bufLen)
	if err != nil {
		return fail(fn, err)
	}
	e, err := acquireReceiver(ep, park)
	if err != nil {
		return fail(fn, err)
	}
	defer e.inflight.Done()
	_, need, err := e.ep.ReceiveBatch(dst, 1, func(ch *core.Channel, _, n int) {
		fillChannel(outChannel, ch)
		*outLen = C.size_t(n)
	}, e.parkFunc(park, seq))
	if err != nil {
		if errors.Is(err, core.ErrBufferTooSmall) {
			*outLen = C.size_t(need)
		}
		return fail(fn, err)
	}
	return C.ARANYA_QUIC_OK
}

func receiveBatch(fn string, ep C.aranya_quic_t, buf *C.uint8_t, bufLen C.size_t, msgs *C.aranya_quic_message, maxMsgs C.size_t, outCount *C.size_t, park **C.aq_waiter, seq *C.uint32_t) C.int32_t {
	if outCount == nil {
		return fail(fn, errorf(C.ARANYA_QUIC_ERR_INVALID_ARGUMENT, "out_count is NULL"))
	}
	*outCount = 0
	if msgs == nil {
		return fail(fn, errorf(C.ARANYA_QUIC_ERR_INVALID_ARGUMENT, "msgs is NULL"))
	}
	if maxMsgs == 0 {
		return fail(fn, errorf(C.ARANYA_QUIC_ERR_INVALID_ARGUMENT, "max_msgs is 0"))
	}
	dst, err := recvBuffer(buf, bufLen)
	if err != nil {
		return fail(fn, err)
	}
	e, err := acquireReceiver(ep, park)
	if err != nil {
		return fail(fn, err)
	}
	defer e.inflight.Done()
	// No more records than a Go slice can index; a caller's array is
	// never that long in practice.
	records := unsafe.Slice(msgs, int(min(uint64(maxMsgs), math.MaxInt32)))
	i := 0
	count, need, err := e.ep.ReceiveBatch(dst, len(records), func(ch *core.Channel, off, n int) {
		r := &records[i]
		fillChannel(&r.channel, ch)
		r.offset = C.size_t(off)
		r.len = C.size_t(n)
		i++
	}, e.parkFunc(park, seq))
	if err != nil {
		if errors.Is(err, core.ErrBufferTooSmall) {
			records[0].len = C.size_t(need)
		}
		return fail(fn, err)
	}
	*outCount = C.size_t(count)
	return C.ARANYA_QUIC_OK
}

// recvBuffer views the caller's receive buffer.
func recvBuffer(buf *C.uint8_t, bufLen C.size_t) ([]byte, error) {
	if buf == nil && bufLen != 0 {
		return nil, errorf(C.ARANYA_QUIC_ERR_INVALID_ARGUMENT, "buf is NULL with buf_len %d", uint64(bufLen))
	}
	if bufLen == 0 {
		return nil, nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(buf)), int(min(uint64(bufLen), maxRecvView))), nil
}

// futexWaker wakes C threads sleeping in wait.c.
type futexWaker struct{ w *C.aq_waiter }

func (f futexWaker) Sleeping() bool {
	return atomic.LoadUint32((*uint32)(unsafe.Pointer(&f.w.sleepers))) > 0
}

func (f futexWaker) Wake(all bool) {
	n := uintptr(1)
	if all {
		n = math.MaxInt32
	}
	addr := (*uint32)(unsafe.Pointer(&f.w.seq))
	atomic.AddUint32(addr, 1)
	// A raw system call, not a cgo call: this runs on the engine's
	// goroutines for every message while a thread waits.
	_, _, _ = syscall.Syscall6(syscall.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexWakePrivate, n, 0, 0, 0)
}

// futexWakePrivate is FUTEX_WAKE | FUTEX_PRIVATE_FLAG (linux/futex.h).
const futexWakePrivate = 1 | 128

// close ends every wait: sleepers return ARANYA_QUIC_ERR_CLOSED.
func (f futexWaker) close() {
	atomic.StoreUint32((*uint32)(unsafe.Pointer(&f.w.closed)), 1)
	f.Wake(true)
}
