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
	"sync/atomic"
	"unicode/utf8"
	"unsafe"

	"github.com/aranya-quic/aranya-quic/core"
)

// maxRecvView bounds the Go view of a receive buffer; no message is larger
// (ARANYA_QUIC_MAX_MESSAGE_SIZE_LIMIT), so a bigger buffer loses nothing.
const maxRecvView = 2 * C.ARANYA_QUIC_MAX_MESSAGE_SIZE_LIMIT

//export aranya_quic_new
func aranya_quic_new(cfg *C.aq_cconfig, out *C.aranya_quic_t) (rc C.int32_t) {
	const fn = "aranya_quic_new"
	defer recoverPanic(fn, &rc)
	if out == nil {
		return fail(fn, errorf(C.ARANYA_QUIC_ERR_INVALID_ARGUMENT, "out is NULL"))
	}
	c, cb, logTo, err := configFrom(cfg)
	if err != nil {
		return fail(fn, err)
	}
	var handle atomic.Uint64
	if cb.fn != nil {
		c.OnMessage = cb.onMessage(&handle)
	}
	ep, err := core.NewEndpoint(c)
	if err != nil {
		if isOSError(err) && !errors.Is(err, core.ErrBadAddress) {
			// The socket could not be bound: not a connection to anyone.
			err = errorf(C.ARANYA_QUIC_ERR_IO, "%v", err)
		}
		return fail(fn, err)
	}
	e := &endpoint{ep: ep, maxMessageSize: c.MaxMessageSize, delivers: cb.fn != nil, logTo: logTo}
	if e.maxMessageSize == 0 {
		e.maxMessageSize = core.DefaultMaxMessageSize
	}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	h := register(e)
	handle.Store(h)
	if logTo != nil {
		logTo.handle.Store(h)
	}
	*out = C.aranya_quic_t(h)
	return C.ARANYA_QUIC_OK
}

//export aranya_quic_free
func aranya_quic_free(ep C.aranya_quic_t) (rc C.int32_t) {
	const fn = "aranya_quic_free"
	defer recoverPanic(fn, &rc)
	if ep == 0 {
		return C.ARANYA_QUIC_OK
	}
	if inside := C.aq_callback_handle(); inside != 0 {
		if inside == ep {
			return fail(fn, errorf(C.ARANYA_QUIC_ERR_INVALID_ARGUMENT, "called from the handle's own receive_callback or log_callback, whose return it would wait for: free it from another thread, or use aranya_quic_free_nowait"))
		}
		if e := lookup(ep); e != nil && (e.delivers || e.logTo != nil) {
			// Its free waits for its callbacks, which may be waiting in
			// turn for the one this call runs in (two callbacks freeing
			// each other's endpoints would never return).
			return fail(fn, errorf(C.ARANYA_QUIC_ERR_INVALID_ARGUMENT, "called from a callback on an endpoint that has callbacks itself: free it from a thread outside the callbacks, or use aranya_quic_free_nowait"))
		}
	}
	e, err := release(ep)
	if e == nil {
		return failIf(fn, err)
	}
	if err := e.destroy(); err != nil {
		return fail(fn, err) // the handle is freed all the same
	}
	return C.ARANYA_QUIC_OK
}

//export aranya_quic_local_addr
func aranya_quic_local_addr(ep C.aranya_quic_t, buf *C.char, bufLen C.size_t, outLen *C.size_t) (rc C.int32_t) {
	const fn = "aranya_quic_local_addr"
	defer recoverPanic(fn, &rc)
	if outLen == nil {
		return fail(fn, errorf(C.ARANYA_QUIC_ERR_INVALID_ARGUMENT, "out_len is NULL"))
	}
	dst, err := cBytes("buf", unsafe.Pointer(buf), bufLen, maxRecvView)
	if err != nil {
		return fail(fn, err)
	}
	e, err := acquire(ep)
	if err != nil {
		return fail(fn, err)
	}
	defer e.inflight.Done()
	s := e.ep.LocalAddr().String()
	*outLen = C.size_t(len(s))
	if len(dst) < len(s)+1 {
		return fail(fn, errorf(C.ARANYA_QUIC_ERR_BUFFER_TOO_SMALL, "the address needs %d bytes with its NUL, buf_len is %d", len(s)+1, len(dst)))
	}
	copy(dst, s)
	dst[len(s)] = 0
	return C.ARANYA_QUIC_OK
}

//export aranya_quic_send
func aranya_quic_send(ep C.aranya_quic_t, addr *C.aq_cchar, teamID *C.aq_cbytes, label *C.aq_cchar, labelLen C.size_t, msg *C.aq_cbytes, msgLen C.size_t) (rc C.int32_t) {
	const fn = "aranya_quic_send"
	defer recoverPanic(fn, &rc)
	team, lab, err := channelArgs(teamID, label, labelLen)
	if err != nil {
		return fail(fn, err)
	}
	return doSend(fn, ep, addr, msg, msgLen, func(ctx context.Context, e *endpoint, to core.Peer, m []byte) error {
		return e.ep.SendTo(ctx, to, team, lab, m)
	})
}

//export aranya_quic_send_sync
func aranya_quic_send_sync(ep C.aranya_quic_t, addr *C.aq_cchar, syncType C.uint32_t, msg *C.aq_cbytes, msgLen C.size_t) (rc C.int32_t) {
	const fn = "aranya_quic_send_sync"
	defer recoverPanic(fn, &rc)
	return doSend(fn, ep, addr, msg, msgLen, func(ctx context.Context, e *endpoint, to core.Peer, m []byte) error {
		return e.ep.SendSyncTo(ctx, to, uint32(syncType), m)
	})
}

// release unregisters ep for free: the endpoint to destroy, or nil with
// the error to report (nil for a handle freed before, or being freed by
// another thread).
func release(ep C.aranya_quic_t) (*endpoint, error) {
	if ep == 0 {
		return nil, nil
	}
	e, issued := unregister(uint64(ep))
	if e == nil && !issued {
		return nil, errorf(C.ARANYA_QUIC_ERR_INVALID_HANDLE, "handle %d was never issued", uint64(ep))
	}
	return e, nil
}

// failIf is fail for a non-nil err, else OK.
func failIf(fn string, err error) C.int32_t {
	if err != nil {
		return fail(fn, err)
	}
	return C.ARANYA_QUIC_OK
}

// checkStructSize refuses an out struct whose struct_size is below what
// this library writes.
func checkStructSize(size, need uint64, typ string) error {
	if size < need {
		return errorf(C.ARANYA_QUIC_ERR_INVALID_ARGUMENT,
			"out->struct_size is %d, this library needs at least %d: set it to sizeof(%s)", size, need, typ)
	}
	return nil
}

// channelArgs checks and views a channel's team id and label. The label
// is a view of the caller's bytes, not a copy: the engine copies it when
// it keeps it (a new channel), which saves an allocation per send.
func channelArgs(teamID *C.aq_cbytes, label *C.aq_cchar, labelLen C.size_t) (core.TeamID, string, error) {
	if teamID == nil {
		return core.TeamID{}, "", errorf(C.ARANYA_QUIC_ERR_INVALID_ARGUMENT, "team_id is NULL")
	}
	if labelLen > C.ARANYA_QUIC_LABEL_MAX {
		return core.TeamID{}, "", errorf(C.ARANYA_QUIC_ERR_INVALID_ARGUMENT, "label_len %d is over ARANYA_QUIC_LABEL_MAX (%d)", uint64(labelLen), C.ARANYA_QUIC_LABEL_MAX)
	}
	lb, err := cBytes("label", unsafe.Pointer(label), labelLen, C.ARANYA_QUIC_LABEL_MAX)
	if err != nil {
		return core.TeamID{}, "", err
	}
	if !utf8.Valid(lb) {
		return core.TeamID{}, "", errorf(C.ARANYA_QUIC_ERR_INVALID_ARGUMENT, "label is not valid UTF-8")
	}
	team := core.TeamID(unsafe.Slice((*byte)(unsafe.Pointer(teamID)), C.ARANYA_QUIC_TEAM_ID_LEN))
	return team, unsafe.String(unsafe.SliceData(lb), len(lb)), nil
}

// doSend is the part send and send_sync share: argument checks, handle,
// address, message limit, and turning cancellation by free into CLOSED.
func doSend(fn string, ep C.aranya_quic_t, addr *C.aq_cchar, msg *C.aq_cbytes, msgLen C.size_t, send func(context.Context, *endpoint, core.Peer, []byte) error) C.int32_t {
	e, to, m, err := sendArgs(ep, addr, msg, msgLen)
	if err != nil {
		return fail(fn, err)
	}
	defer e.inflight.Done()
	// The engine copies the message (or finishes writing it) before Send
	// returns, so the caller's buffer is used in place.
	if err := send(e.ctx, e, to, m); err != nil {
		return fail(fn, closedIfFreed(e, err))
	}
	return C.ARANYA_QUIC_OK
}

// peerArgs parses a peer address argument and acquires the handle;
// without an error the caller calls e.inflight.Done() when finished.
func peerArgs(ep C.aranya_quic_t, addr *C.aq_cchar) (*endpoint, core.Peer, error) {
	to, err := peerAddr(addr)
	if err != nil {
		return nil, core.Peer{}, err
	}
	e, err := acquire(ep)
	if err != nil {
		return nil, core.Peer{}, err
	}
	return e, to, nil
}

// sendArgs checks a send's address and message and acquires the handle;
// without an error the caller calls e.inflight.Done() when finished. The
// message is a view of the caller's buffer.
func sendArgs(ep C.aranya_quic_t, addr *C.aq_cchar, msg *C.aq_cbytes, msgLen C.size_t) (*endpoint, core.Peer, []byte, error) {
	if addr == nil {
		return nil, core.Peer{}, nil, errorf(C.ARANYA_QUIC_ERR_INVALID_ARGUMENT, "addr is NULL")
	}
	if msg == nil && msgLen != 0 {
		return nil, core.Peer{}, nil, errorf(C.ARANYA_QUIC_ERR_INVALID_ARGUMENT, "msg is NULL with msg_len %d", uint64(msgLen))
	}
	e, to, err := peerArgs(ep, addr)
	if err != nil {
		return nil, core.Peer{}, nil, err
	}
	if uint64(msgLen) > e.maxMessageSize {
		e.inflight.Done()
		return nil, core.Peer{}, nil, errorf(C.ARANYA_QUIC_ERR_TOO_LARGE, "msg_len %d is over max_message_size %d", uint64(msgLen), e.maxMessageSize)
	}
	var m []byte
	if msgLen > 0 {
		m = unsafe.Slice((*byte)(unsafe.Pointer(msg)), int(msgLen))
	}
	return e, to, m, nil
}

// closedIfFreed reports err as ARANYA_QUIC_ERR_CLOSED when free cancelled
// the call.
func closedIfFreed(e *endpoint, err error) error {
	if e.ctx.Err() != nil && !errors.Is(err, core.ErrClosed) {
		return fmt.Errorf("%w: the endpoint is being freed (%w)", core.ErrClosed, err)
	}
	return err
}

//export aranya_quic_receive
func aranya_quic_receive(ep C.aranya_quic_t, buf *C.uint8_t, bufLen C.size_t, outChannel *C.aranya_quic_channel, outLen *C.size_t) (rc C.int32_t) {
	const fn = "aranya_quic_receive"
	defer recoverPanic(fn, &rc)
	return receiveOne(fn, ep, buf, bufLen, outChannel, outLen, receiveNow)
}

//export aranya_quic_receive_timeout
func aranya_quic_receive_timeout(ep C.aranya_quic_t, buf *C.uint8_t, bufLen C.size_t, outChannel *C.aranya_quic_channel, outLen *C.size_t, timeoutMs C.int32_t) (rc C.int32_t) {
	const fn = "aranya_quic_receive_timeout"
	defer recoverPanic(fn, &rc)
	return receiveOne(fn, ep, buf, bufLen, outChannel, outLen, receiveWait(timeoutMs, true))
}

//export aranya_quic_receive_batch
func aranya_quic_receive_batch(ep C.aranya_quic_t, buf *C.uint8_t, bufLen C.size_t, msgs *C.aranya_quic_message, maxMsgs C.size_t, outCount *C.size_t, timeoutMs C.int32_t) (rc C.int32_t) {
	const fn = "aranya_quic_receive_batch"
	defer recoverPanic(fn, &rc)
	return receiveBatch(fn, ep, buf, bufLen, msgs, maxMsgs, outCount, receiveWait(timeoutMs, false))
}

// fillChannel writes ch into the C struct, zeroing what does not apply.
func fillChannel(out *C.aranya_quic_channel, ch *core.Channel) {
	*out = C.aranya_quic_channel{}
	addr := unsafe.Slice((*byte)(unsafe.Pointer(&out.addr[0])), len(out.addr))
	var text [C.ARANYA_QUIC_ADDR_MAX]byte
	copy(addr[:len(addr)-1], ch.Addr.AppendTo(text[:0])) // no allocation per message
	out.kind = C.uint32_t(ch.Kind)
	switch ch.Kind {
	case core.KindChannel:
		copy(unsafe.Slice((*byte)(unsafe.Pointer(&out.team_id[0])), len(out.team_id)), ch.TeamID[:])
		label := unsafe.Slice((*byte)(unsafe.Pointer(&out.label[0])), len(out.label))
		out.label_len = C.size_t(copy(label[:len(label)-1], ch.Label))
	case core.KindSync:
		out.sync_type = C.uint32_t(ch.SyncType)
	}
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&out.peer_id[0])), len(out.peer_id)), ch.PeerID[:])
}

//export aranya_quic_receive_fd
func aranya_quic_receive_fd(ep C.aranya_quic_t, outFD *C.int) (rc C.int32_t) {
	const fn = "aranya_quic_receive_fd"
	defer recoverPanic(fn, &rc)
	if outFD == nil {
		return fail(fn, errorf(C.ARANYA_QUIC_ERR_INVALID_ARGUMENT, "out_fd is NULL"))
	}
	e, err := acquire(ep)
	if err != nil {
		return fail(fn, err)
	}
	defer e.inflight.Done()
	if e.delivers {
		return fail(fn, errDelivers())
	}
	fd, err := e.receiveFD()
	if err != nil {
		return fail(fn, err)
	}
	*outFD = C.int(fd)
	return C.ARANYA_QUIC_OK
}

//export aranya_quic_close
func aranya_quic_close(ep C.aranya_quic_t, addr *C.aq_cchar) (rc C.int32_t) {
	const fn = "aranya_quic_close"
	defer recoverPanic(fn, &rc)
	e, to, err := peerArgs(ep, addr)
	if err != nil {
		return fail(fn, err)
	}
	defer e.inflight.Done()
	if err := e.ep.CloseConnectionTo(to); err != nil {
		return fail(fn, closedIfFreed(e, err))
	}
	return C.ARANYA_QUIC_OK
}

//export aranya_quic_get_stats
func aranya_quic_get_stats(ep C.aranya_quic_t, out *C.aranya_quic_stats) (rc C.int32_t) {
	const fn = "aranya_quic_get_stats"
	defer recoverPanic(fn, &rc)
	if out == nil {
		return fail(fn, errorf(C.ARANYA_QUIC_ERR_INVALID_ARGUMENT, "out is NULL"))
	}
	size := uint64(out.struct_size)
	if err := checkStructSize(size, uint64(C.AQ_STATS_V01_SIZE), "aranya_quic_stats"); err != nil {
		return fail(fn, err)
	}
	e, err := acquire(ep)
	if err != nil {
		return fail(fn, err)
	}
	defer e.inflight.Done()
	s := e.ep.Stats()
	// Built whole, then copied up to what the caller's struct holds: a
	// caller built against 0.1 has a shorter struct.
	full := C.aranya_quic_stats{
		struct_size:          C.uint32_t(min(size, uint64(C.sizeof_aranya_quic_stats))),
		open_connections:     C.uint64_t(s.OpenConnections),
		dials:                C.uint64_t(s.Dials),
		accepts:              C.uint64_t(s.Accepts),
		evictions:            C.uint64_t(s.Evictions),
		handshake_failures:   C.uint64_t(s.HandshakeFailures),
		open_streams:         C.uint64_t(s.OpenStreams),
		messages_sent:        C.uint64_t(s.MessagesSent),
		bytes_sent:           C.uint64_t(s.BytesSent),
		messages_received:    C.uint64_t(s.MessagesReceived),
		bytes_received:       C.uint64_t(s.BytesReceived),
		queue_messages:       C.uint64_t(s.QueueMessages),
		queue_bytes:          C.uint64_t(s.QueueBytes),
		streams_reset:        C.uint64_t(s.StreamsReset),
		connections_lost:     C.uint64_t(s.ConnectionsLost),
		messages_unconfirmed: C.uint64_t(s.MessagesUnconfirmed),
		outbound_messages:    C.uint64_t(s.OutboundMessages),
		outbound_bytes:       C.uint64_t(s.OutboundBytes),
		sends_failed:         C.uint64_t(s.SendsFailed),
		events_dropped:       C.uint64_t(s.EventsDropped),
		connections_revoked:  C.uint64_t(s.ConnectionsRevoked),
		messages_revoked:     C.uint64_t(s.MessagesRevoked),
		streams_refused:      C.uint64_t(s.StreamsRefused),
	}
	cc := unsafe.Slice((*byte)(unsafe.Pointer(&full.congestion_control[0])), len(full.congestion_control))
	copy(cc[:len(cc)-1], s.CongestionControl)
	n := int(full.struct_size)
	copy(unsafe.Slice((*byte)(unsafe.Pointer(out)), n), unsafe.Slice((*byte)(unsafe.Pointer(&full)), n))
	return C.ARANYA_QUIC_OK
}
