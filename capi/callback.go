package main

/*
#include "aranya_quic.h"
#include "capi.h"
*/
import "C"

import (
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/aranya-quic/aranya-quic/core"
)

// receiveCallback is the config's receive_callback with its user pointer.
type receiveCallback struct {
	fn   C.aranya_quic_receive_callback
	user unsafe.Pointer
}

// channelRecords recycles the C channel records passed to callbacks: one
// is filled per message, and allocating each would cost more than the
// call.
var channelRecords = sync.Pool{New: func() any { return new(C.aranya_quic_channel) }}

// onMessage adapts the callback to core's OnMessage. handle is the
// endpoint's handle, stored once aranya_quic_new registered it (no message
// can reach the callback with the handle unknown to the caller).
func (cb receiveCallback) onMessage(handle *atomic.Uint64) func(ch *core.Channel, msg []byte) {
	return func(ch *core.Channel, msg []byte) {
		rec := channelRecords.Get().(*C.aranya_quic_channel)
		fillChannel(rec, ch)
		var p *C.uint8_t
		if len(msg) > 0 {
			p = (*C.uint8_t)(unsafe.Pointer(unsafe.SliceData(msg)))
		}
		C.aq_deliver(cb.fn, cb.user, C.aranya_quic_t(handle.Load()), rec, p, C.size_t(len(msg)))
		channelRecords.Put(rec)
	}
}

// errDelivers is what the receive functions return on an endpoint that
// delivers through its callback.
func errDelivers() error {
	return errorf(C.ARANYA_QUIC_ERR_INVALID_ARGUMENT, "this endpoint delivers messages to its receive_callback; nothing is queued")
}
