package main

/*
#include "aranya_quic.h"
#include "capi.h"
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
	"unsafe"

	"github.com/aranya-quic/aranya-quic/core"
)

// receiveMode says whether a receive waits for a message, and how long.
type receiveMode struct {
	wait    bool
	timeout time.Duration // < 0: until a message arrives or free
	// zeroIsTimeout makes an empty queue with timeout 0 ERR_TIMEOUT
	// (receive_timeout) rather than ERR_WOULD_BLOCK (receive_batch).
	zeroIsTimeout bool
}

var receiveNow = receiveMode{}

func receiveWait(timeoutMs C.int32_t, zeroIsTimeout bool) receiveMode {
	return receiveMode{wait: true, timeout: time.Duration(timeoutMs) * time.Millisecond, zeroIsTimeout: zeroIsTimeout}
}

// take runs one receive of up to max messages in mode m. The wait is in Go
// on purpose: a C thread that blocks inside Go lets the runtime hand its
// processor to the engine's goroutines at once, whereas a thread that
// returns to C and sleeps there keeps it until the runtime's monitor takes
// it back, which measured slower (docs/PERFORMANCE.md).
func (e *endpoint) take(m receiveMode, dst []byte, max int, each func(ch *core.Channel, off, n int)) (count, need int, err error) {
	if e.delivers {
		return 0, 0, errDelivers()
	}
	count, need, err = e.ep.ReceiveBatch(dst, max, each)
	if !m.wait || !errors.Is(err, core.ErrWouldBlock) {
		return count, need, err
	}
	if m.timeout == 0 {
		if m.zeroIsTimeout {
			err = fmt.Errorf("%w: no message queued (timeout 0)", core.ErrTimeout)
		}
		return 0, 0, err
	}
	ctx := e.ctx
	if m.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, m.timeout)
		defer cancel()
	}
	count, need, err = e.ep.ReceiveBatchContext(ctx, dst, max, each)
	if err != nil {
		err = closedIfFreed(e, err)
	}
	return count, need, err
}

func receiveOne(fn string, ep C.aranya_quic_t, buf *C.uint8_t, bufLen C.size_t, outChannel *C.aranya_quic_channel, outLen *C.size_t, m receiveMode) C.int32_t {
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
	e, err := acquire(ep)
	if err != nil {
		return fail(fn, err)
	}
	defer e.inflight.Done()
	_, need, err := e.take(m, dst, 1, func(ch *core.Channel, _, n int) {
		fillChannel(outChannel, ch)
		*outLen = C.size_t(n)
	})
	if err != nil {
		if errors.Is(err, core.ErrBufferTooSmall) {
			*outLen = C.size_t(need)
		}
		return fail(fn, err)
	}
	return C.ARANYA_QUIC_OK
}

func receiveBatch(fn string, ep C.aranya_quic_t, buf *C.uint8_t, bufLen C.size_t, msgs *C.aranya_quic_message, maxMsgs C.size_t, outCount *C.size_t, m receiveMode) C.int32_t {
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
	e, err := acquire(ep)
	if err != nil {
		return fail(fn, err)
	}
	defer e.inflight.Done()
	// No more records than a Go slice can index; a caller's array is
	// never that long in practice.
	records := unsafe.Slice(msgs, int(min(uint64(maxMsgs), math.MaxInt32)))
	i := 0
	var prev *core.Channel
	count, need, err := e.take(m, dst, len(records), func(ch *core.Channel, off, n int) {
		r := &records[i]
		if ch == prev {
			r.channel = records[i-1].channel // same stream: same channel
		} else {
			fillChannel(&r.channel, ch)
			prev = ch
		}
		r.offset = C.size_t(off)
		r.len = C.size_t(n)
		i++
	})
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
