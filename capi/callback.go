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

// channelRecord is a C channel record and the channel it was last filled
// from: consecutive messages of a stream share their channel, and filling
// the record (the address formatted as text) costs more than the call.
type channelRecord struct {
	rec  C.aranya_quic_channel
	from *core.Channel
}

// channelRecords recycles the records passed to callbacks.
var channelRecords = sync.Pool{New: func() any { return new(channelRecord) }}

// onMessage adapts the callback to core's OnMessage. handle is the
// endpoint's handle, stored once aranya_quic_new registered it (no message
// can reach the callback with the handle unknown to the caller).
func (cb receiveCallback) onMessage(handle *atomic.Uint64) func(ch *core.Channel, msg []byte) {
	return func(ch *core.Channel, msg []byte) {
		r := channelRecords.Get().(*channelRecord)
		if r.from != ch {
			// A stream's channel never changes while its reader runs.
			fillChannel(&r.rec, ch)
			r.from = ch
		}
		var p *C.uint8_t
		if len(msg) > 0 {
			p = (*C.uint8_t)(unsafe.Pointer(unsafe.SliceData(msg)))
		}
		C.aq_deliver(cb.fn, cb.user, C.aranya_quic_t(handle.Load()), &r.rec, p, C.size_t(len(msg)))
		channelRecords.Put(r)
	}
}

// errDelivers is what the receive functions return on an endpoint that
// delivers through its callback.
func errDelivers() error {
	return errorf(C.ARANYA_QUIC_ERR_INVALID_ARGUMENT, "this endpoint delivers messages to its receive_callback; nothing is queued")
}
