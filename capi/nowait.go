package main

/*
#include "aranya_quic.h"
#include "capi.h"
*/
import "C"

import (
	"fmt"
	"unsafe"

	"github.com/aranya-quic/aranya-quic/core"
)

//export aranya_quic_send_nowait
func aranya_quic_send_nowait(ep C.aranya_quic_t, addr *C.aq_cchar, teamID *C.aq_cbytes, label *C.aq_cchar, labelLen C.size_t, msg *C.aq_cbytes, msgLen C.size_t, outID *C.uint64_t) (rc C.int32_t) {
	const fn = "aranya_quic_send_nowait"
	defer recoverPanic(fn, &rc)
	team, lab, err := channelArgs(teamID, label, labelLen)
	if err != nil {
		return fail(fn, err)
	}
	return doTrySend(fn, ep, addr, msg, msgLen, outID, func(e *endpoint, to core.Peer, m []byte) (uint64, error) {
		return e.ep.TrySend(to, team, lab, m)
	})
}

//export aranya_quic_send_sync_nowait
func aranya_quic_send_sync_nowait(ep C.aranya_quic_t, addr *C.aq_cchar, syncType C.uint32_t, msg *C.aq_cbytes, msgLen C.size_t, outID *C.uint64_t) (rc C.int32_t) {
	const fn = "aranya_quic_send_sync_nowait"
	defer recoverPanic(fn, &rc)
	return doTrySend(fn, ep, addr, msg, msgLen, outID, func(e *endpoint, to core.Peer, m []byte) (uint64, error) {
		return e.ep.TrySendSync(to, uint32(syncType), m)
	})
}

// doTrySend is what the two non-blocking sends share.
func doTrySend(fn string, ep C.aranya_quic_t, addr *C.aq_cchar, msg *C.aq_cbytes, msgLen C.size_t, outID *C.uint64_t, send func(*endpoint, core.Peer, []byte) (uint64, error)) C.int32_t {
	e, to, m, err := sendArgs(ep, addr, msg, msgLen)
	if err != nil {
		return fail(fn, err)
	}
	defer e.inflight.Done()
	// The engine copies what it queues, so the caller's buffer is used in
	// place.
	id, err := send(e, to, m)
	if err != nil {
		return fail(fn, closedIfFreed(e, err))
	}
	if outID != nil {
		*outID = C.uint64_t(id)
	}
	return C.ARANYA_QUIC_OK
}

//export aranya_quic_send_batch_nowait
func aranya_quic_send_batch_nowait(ep C.aranya_quic_t, addr *C.aq_cchar, teamID *C.aq_cbytes, label *C.aq_cchar, labelLen C.size_t, msgs *C.aq_cbuf, count C.size_t, outSent *C.size_t, outFirstID *C.uint64_t) (rc C.int32_t) {
	const fn = "aranya_quic_send_batch_nowait"
	defer recoverPanic(fn, &rc)
	if outSent == nil {
		return fail(fn, errorf(C.ARANYA_QUIC_ERR_INVALID_ARGUMENT, "out_sent is NULL"))
	}
	*outSent = 0
	team, lab, err := channelArgs(teamID, label, labelLen)
	if err != nil {
		return fail(fn, err)
	}
	return doTrySendBatch(fn, ep, addr, msgs, count, outSent, outFirstID, func(e *endpoint, to core.Peer, n int, msg func(int) ([]byte, error)) (int, uint64, error) {
		return e.ep.TrySendBatch(to, team, lab, n, msg)
	})
}

//export aranya_quic_send_sync_batch_nowait
func aranya_quic_send_sync_batch_nowait(ep C.aranya_quic_t, addr *C.aq_cchar, syncType C.uint32_t, msgs *C.aq_cbuf, count C.size_t, outSent *C.size_t, outFirstID *C.uint64_t) (rc C.int32_t) {
	const fn = "aranya_quic_send_sync_batch_nowait"
	defer recoverPanic(fn, &rc)
	if outSent == nil {
		return fail(fn, errorf(C.ARANYA_QUIC_ERR_INVALID_ARGUMENT, "out_sent is NULL"))
	}
	*outSent = 0
	return doTrySendBatch(fn, ep, addr, msgs, count, outSent, outFirstID, func(e *endpoint, to core.Peer, n int, msg func(int) ([]byte, error)) (int, uint64, error) {
		return e.ep.TrySendSyncBatch(to, uint32(syncType), n, msg)
	})
}

func doTrySendBatch(fn string, ep C.aranya_quic_t, addr *C.aq_cchar, msgs *C.aq_cbuf, count C.size_t, outSent *C.size_t, outFirstID *C.uint64_t, send func(*endpoint, core.Peer, int, func(int) ([]byte, error)) (int, uint64, error)) C.int32_t {
	e, to, items, err := batchArgs(ep, addr, msgs, count)
	if err != nil {
		return fail(fn, err)
	}
	defer e.inflight.Done()
	sent, first, err := send(e, to, len(items), func(i int) ([]byte, error) { return batchItem(e, items, i) })
	*outSent = C.size_t(sent)
	if sent > 0 && outFirstID != nil {
		*outFirstID = C.uint64_t(first)
	}
	if err != nil {
		return fail(fn, fmt.Errorf("msgs[%d]: %w", sent, closedIfFreed(e, err)))
	}
	return C.ARANYA_QUIC_OK
}

// batchItem checks and views message i of a batch.
func batchItem(e *endpoint, items []C.aq_cbuf, i int) ([]byte, error) {
	it := &items[i]
	switch {
	case it.data == nil && it.len != 0:
		return nil, errorf(C.ARANYA_QUIC_ERR_INVALID_ARGUMENT, "msgs[%d].data is NULL with len %d", i, uint64(it.len))
	case uint64(it.len) > e.maxMessageSize:
		return nil, errorf(C.ARANYA_QUIC_ERR_TOO_LARGE, "msgs[%d].len %d is over max_message_size %d", i, uint64(it.len), e.maxMessageSize)
	case it.len == 0:
		return nil, nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(it.data)), int(it.len)), nil
}

//export aranya_quic_send_fd
func aranya_quic_send_fd(ep C.aranya_quic_t, outFD *C.int) (rc C.int32_t) {
	const fn = "aranya_quic_send_fd"
	defer recoverPanic(fn, &rc)
	return exportFD(fn, ep, outFD, (*endpoint).sendFD)
}

//export aranya_quic_event_fd
func aranya_quic_event_fd(ep C.aranya_quic_t, outFD *C.int) (rc C.int32_t) {
	const fn = "aranya_quic_event_fd"
	defer recoverPanic(fn, &rc)
	return exportFD(fn, ep, outFD, (*endpoint).eventFD)
}

func exportFD(fn string, ep C.aranya_quic_t, outFD *C.int, get func(*endpoint) (int, error)) C.int32_t {
	if outFD == nil {
		return fail(fn, errorf(C.ARANYA_QUIC_ERR_INVALID_ARGUMENT, "out_fd is NULL"))
	}
	e, err := acquire(ep)
	if err != nil {
		return fail(fn, err)
	}
	defer e.inflight.Done()
	fd, err := get(e)
	if err != nil {
		return fail(fn, err)
	}
	*outFD = C.int(fd)
	return C.ARANYA_QUIC_OK
}

//export aranya_quic_close_nowait
func aranya_quic_close_nowait(ep C.aranya_quic_t, addr *C.aq_cchar, outID *C.uint64_t) (rc C.int32_t) {
	const fn = "aranya_quic_close_nowait"
	defer recoverPanic(fn, &rc)
	e, to, err := peerArgs(ep, addr)
	if err != nil {
		return fail(fn, err)
	}
	defer e.inflight.Done()
	id, err := e.ep.CloseConnectionAsync(to)
	if err != nil {
		return fail(fn, closedIfFreed(e, err))
	}
	if outID != nil {
		*outID = C.uint64_t(id)
	}
	return C.ARANYA_QUIC_OK
}

//export aranya_quic_shutdown
func aranya_quic_shutdown(ep C.aranya_quic_t, outID *C.uint64_t) (rc C.int32_t) {
	const fn = "aranya_quic_shutdown"
	defer recoverPanic(fn, &rc)
	e, err := acquire(ep)
	if err != nil {
		return fail(fn, err)
	}
	defer e.inflight.Done()
	id := e.ep.Shutdown()
	if outID != nil {
		*outID = C.uint64_t(id)
	}
	return C.ARANYA_QUIC_OK
}

//export aranya_quic_free_nowait
func aranya_quic_free_nowait(ep C.aranya_quic_t) (rc C.int32_t) {
	const fn = "aranya_quic_free_nowait"
	defer recoverPanic(fn, &rc)
	e, err := release(ep)
	if e == nil {
		return failIf(fn, err)
	}
	e.destroyInBackground()
	return C.ARANYA_QUIC_OK
}

//export aranya_quic_next_event
func aranya_quic_next_event(ep C.aranya_quic_t, out *C.aranya_quic_event) (rc C.int32_t) {
	const fn = "aranya_quic_next_event"
	defer recoverPanic(fn, &rc)
	if out == nil {
		return fail(fn, errorf(C.ARANYA_QUIC_ERR_INVALID_ARGUMENT, "out is NULL"))
	}
	if err := checkStructSize(uint64(out.struct_size), uint64(C.sizeof_aranya_quic_event), "aranya_quic_event"); err != nil {
		return fail(fn, err)
	}
	e, err := acquire(ep)
	if err != nil {
		return fail(fn, err)
	}
	defer e.inflight.Done()
	ev, ok := e.ep.NextEvent()
	if !ok {
		return fail(fn, errorf(C.ARANYA_QUIC_ERR_WOULD_BLOCK, "no event waiting"))
	}
	fillEvent(out, &ev)
	return C.ARANYA_QUIC_OK
}

// fillEvent writes ev into the C struct, zeroing what does not apply.
func fillEvent(out *C.aranya_quic_event, ev *core.Event) {
	*out = C.aranya_quic_event{
		struct_size:    C.uint32_t(C.sizeof_aranya_quic_event),
		_type:          C.uint32_t(ev.Type),
		id:             C.uint64_t(ev.ID),
		unconfirmed:    C.uint64_t(ev.Unconfirmed),
		dropped_before: C.uint64_t(ev.DroppedBefore),
	}
	if ev.Err != nil {
		out.error_code = codeOf(ev.Err)
	}
	copyCString(unsafe.Slice((*byte)(unsafe.Pointer(&out.addr[0])), len(out.addr)), ev.Peer)
	copyCString(unsafe.Slice((*byte)(unsafe.Pointer(&out.reason[0])), len(out.reason)), ev.Reason)
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&out.peer_id[0])), len(out.peer_id)), ev.PeerID[:])
	if ev.Type == core.EventSendFailed {
		fillChannel(&out.channel, &ev.Channel)
		if !ev.Channel.Addr.IsValid() {
			out.channel.addr[0] = 0
		}
	}
}

// copyCString writes s into dst as a NUL-terminated string, cut to fit at
// a UTF-8 boundary.
func copyCString(dst []byte, s string) {
	if len(s) >= len(dst) {
		s = cutUTF8(s, len(dst)-1)
	}
	n := copy(dst, s)
	dst[n] = 0
}
