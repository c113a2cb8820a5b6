package main

/*
#include "aranya_quic.h"
#include "capi.h"
*/
import "C"

import (
	"time"
	"unsafe"

	"github.com/aranya-quic/aranya-quic/core"
)

// connectionInfoV02Size is the smallest info_size aranya_quic_connections
// accepts: the struct as it was added.
const connectionInfoV02Size = C.sizeof_aranya_quic_connection_info

// maxConnectionInfos bounds the capacity a caller may pass, so that a
// garbage count fails cleanly instead of viewing far out of bounds.
const maxConnectionInfos = 1 << 20

//export aranya_quic_set_trust
func aranya_quic_set_trust(ep C.aranya_quic_t, caPEM *C.aq_cbytes, caPEMLen C.size_t, pinned *C.aq_cbytes, pinnedLen C.size_t, revokedIDs *C.uint8_t, revokedCap C.size_t, outRevoked *C.size_t) (rc C.int32_t) {
	const fn = "aranya_quic_set_trust"
	defer recoverPanic(fn, &rc)
	ca, err := cBytes("ca_pem", unsafe.Pointer(caPEM), caPEMLen, maxPEMLen)
	if err != nil {
		return fail(fn, err)
	}
	pins, err := pinsFrom("pinned_peers", (*C.uint8_t)(unsafe.Pointer(pinned)), pinnedLen)
	if err != nil {
		return fail(fn, err)
	}
	if revokedCap > maxPinnedPeers {
		return fail(fn, errorf(C.ARANYA_QUIC_ERR_INVALID_ARGUMENT, "revoked_peer_ids_cap %d is over the limit %d", uint64(revokedCap), maxPinnedPeers))
	}
	if revokedIDs == nil && revokedCap != 0 {
		return fail(fn, errorf(C.ARANYA_QUIC_ERR_INVALID_ARGUMENT, "revoked_peer_ids is NULL with capacity %d", uint64(revokedCap)))
	}
	e, err := acquire(ep)
	if err != nil {
		return fail(fn, err)
	}
	defer e.inflight.Done()
	var revoked []core.PeerID
	if C.aq_callback_handle() != 0 {
		// Waiting for receive callbacks from inside one could wait for
		// itself, or for a callback waiting for this one.
		revoked, err = e.ep.SetTrustFromCallback(ca, pins)
	} else {
		revoked, err = e.ep.SetTrust(ca, pins)
	}
	if err != nil {
		return fail(fn, err)
	}
	if revokedCap > 0 {
		dst := unsafe.Slice((*byte)(unsafe.Pointer(revokedIDs)), int(revokedCap)*C.ARANYA_QUIC_PEER_ID_LEN)
		for i, id := range revoked[:min(len(revoked), int(revokedCap))] {
			copy(dst[i*C.ARANYA_QUIC_PEER_ID_LEN:], id[:])
		}
	}
	if outRevoked != nil {
		*outRevoked = C.size_t(len(revoked))
	}
	return C.ARANYA_QUIC_OK
}

//export aranya_quic_set_identity
func aranya_quic_set_identity(ep C.aranya_quic_t, certPEM *C.aq_cbytes, certPEMLen C.size_t, keyPEM *C.aq_cbytes, keyPEMLen C.size_t) (rc C.int32_t) {
	const fn = "aranya_quic_set_identity"
	defer recoverPanic(fn, &rc)
	cert, err := cBytes("cert_pem", unsafe.Pointer(certPEM), certPEMLen, maxPEMLen)
	if err != nil {
		return fail(fn, err)
	}
	key, err := cBytes("key_pem", unsafe.Pointer(keyPEM), keyPEMLen, maxPEMLen)
	if err != nil {
		return fail(fn, err)
	}
	e, err := acquire(ep)
	if err != nil {
		return fail(fn, err)
	}
	defer e.inflight.Done()
	// core parses into its own memory (crypto/tls copies what it keeps).
	return failIf(fn, e.ep.SetIdentity(cert, key))
}

//export aranya_quic_team_allow
func aranya_quic_team_allow(ep C.aranya_quic_t, peerID *C.aq_cbytes, teamID *C.aq_cbytes) (rc C.int32_t) {
	const fn = "aranya_quic_team_allow"
	defer recoverPanic(fn, &rc)
	return teamCall(fn, ep, peerID, teamID, func(e *endpoint, peer core.PeerID, team core.TeamID) error {
		return e.ep.AllowTeam(peer, team)
	})
}

//export aranya_quic_team_revoke
func aranya_quic_team_revoke(ep C.aranya_quic_t, peerID *C.aq_cbytes, teamID *C.aq_cbytes, outLastTeam *C.uint32_t) (rc C.int32_t) {
	const fn = "aranya_quic_team_revoke"
	defer recoverPanic(fn, &rc)
	return teamCall(fn, ep, peerID, teamID, func(e *endpoint, peer core.PeerID, team core.TeamID) error {
		revoke := e.ep.RevokeTeam
		if C.aq_callback_handle() != 0 {
			revoke = e.ep.RevokeTeamFromCallback
		}
		last, err := revoke(peer, team)
		if err == nil && outLastTeam != nil {
			*outLastTeam = 0
			if last {
				*outLastTeam = 1
			}
		}
		return err
	})
}

// teamCall reads the two ids of the team calls and runs call on the
// endpoint; core checks the ids' values.
func teamCall(fn string, ep C.aranya_quic_t, peerID, teamID *C.aq_cbytes, call func(*endpoint, core.PeerID, core.TeamID) error) C.int32_t {
	if peerID == nil || teamID == nil {
		return fail(fn, errorf(C.ARANYA_QUIC_ERR_INVALID_ARGUMENT, "peer_id and team_id must not be NULL"))
	}
	peer := core.PeerID(unsafe.Slice((*byte)(unsafe.Pointer(peerID)), C.ARANYA_QUIC_PEER_ID_LEN))
	team := core.TeamID(unsafe.Slice((*byte)(unsafe.Pointer(teamID)), C.ARANYA_QUIC_TEAM_ID_LEN))
	e, err := acquire(ep)
	if err != nil {
		return fail(fn, err)
	}
	defer e.inflight.Done()
	return failIf(fn, call(e, peer, team))
}

//export aranya_quic_connections
func aranya_quic_connections(ep C.aranya_quic_t, out *C.aranya_quic_connection_info, capacity C.size_t, infoSize C.size_t, outCount *C.size_t) (rc C.int32_t) {
	const fn = "aranya_quic_connections"
	defer recoverPanic(fn, &rc)
	switch {
	case outCount == nil:
		return fail(fn, errorf(C.ARANYA_QUIC_ERR_INVALID_ARGUMENT, "out_count is NULL"))
	case out == nil && capacity != 0:
		return fail(fn, errorf(C.ARANYA_QUIC_ERR_INVALID_ARGUMENT, "out is NULL with capacity %d", uint64(capacity)))
	case uint64(capacity) > maxConnectionInfos:
		return fail(fn, errorf(C.ARANYA_QUIC_ERR_INVALID_ARGUMENT, "capacity %d is over the limit %d", uint64(capacity), maxConnectionInfos))
	}
	if err := checkStructSize(uint64(infoSize), uint64(connectionInfoV02Size), "aranya_quic_connection_info"); err != nil {
		return fail(fn, err)
	}
	e, err := acquire(ep)
	if err != nil {
		return fail(fn, err)
	}
	defer e.inflight.Done()
	conns := e.ep.Connections()
	*outCount = C.size_t(len(conns))
	n := min(len(conns), int(capacity))
	filled := min(uint64(infoSize), uint64(C.sizeof_aranya_quic_connection_info))
	for i := range n {
		full := connectionInfo(conns[i], filled)
		dst := unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(out), uintptr(i)*uintptr(infoSize))), filled)
		copy(dst, unsafe.Slice((*byte)(unsafe.Pointer(&full)), filled))
	}
	if n < len(conns) {
		return fail(fn, errorf(C.ARANYA_QUIC_ERR_BUFFER_TOO_SMALL, "%d connections, room for %d", len(conns), n))
	}
	return C.ARANYA_QUIC_OK
}

func connectionInfo(c core.ConnInfo, filled uint64) C.aranya_quic_connection_info {
	info := C.aranya_quic_connection_info{
		struct_size:       C.uint32_t(filled),
		connected_unix_ms: C.uint64_t(max(c.ConnectedAt.UnixMilli(), 0)),
		connected_ms:      C.uint64_t(max(time.Since(c.ConnectedAt).Milliseconds(), 0)),
		smoothed_rtt_us:   C.uint64_t(c.SmoothedRTT.Microseconds()),
		min_rtt_us:        C.uint64_t(c.MinRTT.Microseconds()),
		latest_rtt_us:     C.uint64_t(c.LatestRTT.Microseconds()),
		congestion_window: C.uint64_t(c.CongestionWindow),
		bytes_in_flight:   C.ARANYA_QUIC_UNKNOWN,
		packets_sent:      C.uint64_t(c.PacketsSent),
		packets_received:  C.uint64_t(c.PacketsReceived),
		packets_lost:      C.uint64_t(c.PacketsLost),
		messages_sent:     C.uint64_t(c.MessagesSent),
		bytes_sent:        C.uint64_t(c.BytesSent),
		messages_received: C.uint64_t(c.MessagesReceived),
		bytes_received:    C.uint64_t(c.BytesReceived),
	}
	if c.Dialed {
		info.dialed = 1
	}
	if c.Draining {
		info.draining = 1
	}
	if c.BytesInFlightKnown {
		info.bytes_in_flight = C.uint64_t(c.BytesInFlight)
	}
	copyCString(unsafe.Slice((*byte)(unsafe.Pointer(&info.addr[0])), len(info.addr)), c.Addr.String())
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&info.peer_id[0])), len(info.peer_id)), c.PeerID[:])
	copyCString(unsafe.Slice((*byte)(unsafe.Pointer(&info.congestion_control[0])), len(info.congestion_control)), c.CongestionControl)
	return info
}

//export aranya_quic_peer_id_from_pem
func aranya_quic_peer_id_from_pem(certPEM *C.aq_cbytes, certPEMLen C.size_t, out *C.uint8_t) (rc C.int32_t) {
	const fn = "aranya_quic_peer_id_from_pem"
	defer recoverPanic(fn, &rc)
	if out == nil {
		return fail(fn, errorf(C.ARANYA_QUIC_ERR_INVALID_ARGUMENT, "out is NULL"))
	}
	pemBytes, err := cBytes("cert_pem", unsafe.Pointer(certPEM), certPEMLen, maxPEMLen)
	if err != nil {
		return fail(fn, err)
	}
	id, err := core.PeerIDFromPEM(pemBytes)
	if err != nil {
		return fail(fn, err)
	}
	copy(unsafe.Slice((*byte)(unsafe.Pointer(out)), C.ARANYA_QUIC_PEER_ID_LEN), id[:])
	return C.ARANYA_QUIC_OK
}
