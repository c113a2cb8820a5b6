package main

/*
#include "aranya_quic.h"
#include "capi.h"
*/
import "C"

import (
	"context"
	"fmt"
	"math"
	"unsafe"

	"github.com/aranya-quic/aranya-quic/core"
)

//export aranya_quic_send_batch
func aranya_quic_send_batch(ep C.aranya_quic_t, addr *C.aq_cchar, teamID *C.aq_cbytes, label *C.aq_cchar, labelLen C.size_t, msgs *C.aq_cbuf, count C.size_t, outSent *C.size_t) (rc C.int32_t) {
	const fn = "aranya_quic_send_batch"
	defer recoverPanic(fn, &rc)
	if outSent == nil {
		return fail(fn, errorf(C.ARANYA_QUIC_ERR_INVALID_ARGUMENT, "out_sent is NULL"))
	}
	*outSent = 0
	team, lab, err := channelArgs(teamID, label, labelLen)
	if err != nil {
		return fail(fn, err)
	}
	return doSendBatch(fn, ep, addr, msgs, count, outSent, func(ctx context.Context, e *endpoint, to core.Peer, n int, msg func(int) ([]byte, error)) (int, error) {
		return e.ep.SendBatchTo(ctx, to, team, lab, n, msg)
	})
}

//export aranya_quic_send_sync_batch
func aranya_quic_send_sync_batch(ep C.aranya_quic_t, addr *C.aq_cchar, syncType C.uint32_t, msgs *C.aq_cbuf, count C.size_t, outSent *C.size_t) (rc C.int32_t) {
	const fn = "aranya_quic_send_sync_batch"
	defer recoverPanic(fn, &rc)
	if outSent == nil {
		return fail(fn, errorf(C.ARANYA_QUIC_ERR_INVALID_ARGUMENT, "out_sent is NULL"))
	}
	*outSent = 0
	return doSendBatch(fn, ep, addr, msgs, count, outSent, func(ctx context.Context, e *endpoint, to core.Peer, n int, msg func(int) ([]byte, error)) (int, error) {
		return e.ep.SendSyncBatchTo(ctx, to, uint32(syncType), n, msg)
	})
}

type batchSender func(ctx context.Context, e *endpoint, to core.Peer, n int, msg func(int) ([]byte, error)) (int, error)

// doSendBatch is what both batch sends share: the checks of the arguments
// that apply to every message come first; each message is checked when
// its turn comes, so those before a bad one are still sent.
func doSendBatch(fn string, ep C.aranya_quic_t, addr *C.aq_cchar, msgs *C.aq_cbuf, count C.size_t, outSent *C.size_t, send batchSender) C.int32_t {
	e, to, items, err := batchArgs(ep, addr, msgs, count)
	if err != nil {
		return fail(fn, err)
	}
	defer e.inflight.Done()
	// The engine copies each message (or finishes writing it) before it
	// moves to the next, so the caller's buffers are used in place.
	sent, err := send(e.ctx, e, to, len(items), func(i int) ([]byte, error) { return batchItem(e, items, i) })
	*outSent = C.size_t(sent)
	if err != nil {
		return fail(fn, fmt.Errorf("msgs[%d]: %w", sent, closedIfFreed(e, err)))
	}
	return C.ARANYA_QUIC_OK
}

// batchArgs checks what applies to every message of a batch and acquires
// the handle; without an error the caller calls e.inflight.Done() when
// finished. With count 0 the engine still checks the address (its own
// address is refused as for any batch).
func batchArgs(ep C.aranya_quic_t, addr *C.aq_cchar, msgs *C.aq_cbuf, count C.size_t) (*endpoint, core.Peer, []C.aq_cbuf, error) {
	if addr == nil {
		return nil, core.Peer{}, nil, errorf(C.ARANYA_QUIC_ERR_INVALID_ARGUMENT, "addr is NULL")
	}
	if msgs == nil && count != 0 {
		return nil, core.Peer{}, nil, errorf(C.ARANYA_QUIC_ERR_INVALID_ARGUMENT, "msgs is NULL with count %d", uint64(count))
	}
	if uint64(count) > math.MaxInt32 {
		return nil, core.Peer{}, nil, errorf(C.ARANYA_QUIC_ERR_INVALID_ARGUMENT, "count %d is over %d", uint64(count), math.MaxInt32)
	}
	e, to, err := peerArgs(ep, addr)
	if err != nil {
		return nil, core.Peer{}, nil, err
	}
	return e, to, unsafe.Slice(msgs, int(count)), nil
}
