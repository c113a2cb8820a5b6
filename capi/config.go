package main

/*
#include "aranya_quic.h"
#include "capi.h"
*/
import "C"

import (
	"log/slog"
	"os"
	"strings"
	"time"
	"unsafe"

	"github.com/aranya-quic/aranya-quic/core"
)

// The defaults written in the header must equal core's: each line fails to
// compile (constant index out of range) when they differ.
var _ = [1]struct{}{}[int64(C.ARANYA_QUIC_DEFAULT_MAX_CONNECTIONS)-int64(core.DefaultMaxConnections)]
var _ = [1]struct{}{}[int64(C.ARANYA_QUIC_DEFAULT_IDLE_TIMEOUT_MS)-int64(core.DefaultIdleTimeout/time.Millisecond)]
var _ = [1]struct{}{}[int64(C.ARANYA_QUIC_DEFAULT_HANDSHAKE_TIMEOUT_MS)-int64(core.DefaultHandshakeTimeout/time.Millisecond)]
var _ = [1]struct{}{}[int64(C.ARANYA_QUIC_DEFAULT_SEND_TIMEOUT_MS)-int64(core.DefaultSendTimeout/time.Millisecond)]
var _ = [1]struct{}{}[int64(C.ARANYA_QUIC_DEFAULT_DRAIN_TIMEOUT_MS)-int64(core.DefaultDrainTimeout/time.Millisecond)]
var _ = [1]struct{}{}[int64(C.ARANYA_QUIC_DEFAULT_CONNECT_TIMEOUT_MS)-int64(core.DefaultConnectTimeout/time.Millisecond)]
var _ = [1]struct{}{}[int64(C.ARANYA_QUIC_DEFAULT_MAX_MESSAGE_SIZE)-int64(core.DefaultMaxMessageSize)]
var _ = [1]struct{}{}[int64(C.ARANYA_QUIC_DEFAULT_MAX_QUEUE_BYTES)-int64(core.DefaultMaxQueueBytes)]
var _ = [1]struct{}{}[int64(C.ARANYA_QUIC_DEFAULT_MAX_QUEUE_MESSAGES)-int64(core.DefaultMaxQueueMessages)]
var _ = [1]struct{}{}[int64(C.ARANYA_QUIC_DEFAULT_MAX_CHANNELS_PER_PEER)-int64(core.DefaultMaxChannelsPerPeer)]
var _ = [1]struct{}{}[int64(C.ARANYA_QUIC_DEFAULT_SEND_BUFFER_BYTES)-int64(core.DefaultSendBufferBytes)]
var _ = [1]struct{}{}[int64(C.ARANYA_QUIC_DEFAULT_MAX_OUTBOUND_BYTES_PER_PEER)-int64(core.DefaultMaxOutboundBytesPerPeer)]
var _ = [1]struct{}{}[int64(C.ARANYA_QUIC_DEFAULT_MAX_OUTBOUND_BYTES)-int64(core.DefaultMaxOutboundBytes)]
var _ = [1]struct{}{}[int64(C.ARANYA_QUIC_DEFAULT_MAX_EVENTS)-int64(core.DefaultMaxEvents)]
var _ = [1]struct{}{}[int64(C.ARANYA_QUIC_DEFAULT_RESOLVE_TIMEOUT_MS)-int64(core.DefaultResolveTimeout/time.Millisecond)]
var _ = [1]struct{}{}[int64(C.ARANYA_QUIC_EVENT_PEER_CONNECTED)-int64(core.EventPeerConnected)]
var _ = [1]struct{}{}[int64(C.ARANYA_QUIC_EVENT_PEER_DISCONNECTED)-int64(core.EventPeerDisconnected)]
var _ = [1]struct{}{}[int64(C.ARANYA_QUIC_EVENT_SEND_FAILED)-int64(core.EventSendFailed)]
var _ = [1]struct{}{}[int64(C.ARANYA_QUIC_EVENT_CLOSE_FINISHED)-int64(core.EventCloseFinished)]
var _ = [1]struct{}{}[int64(C.ARANYA_QUIC_EVENT_HANDSHAKE_REJECTED)-int64(core.EventHandshakeRejected)]
var _ = [1]struct{}{}[int64(C.ARANYA_QUIC_EVENT_SHUTDOWN_FINISHED)-int64(core.EventShutdownFinished)]
var _ = [1]struct{}{}[int64(C.ARANYA_QUIC_TEAM_ID_LEN)-int64(len(core.TeamID{}))]
var _ = [1]struct{}{}[int64(C.ARANYA_QUIC_PEER_ID_LEN)-int64(len(core.PeerID{}))]
var _ = [1]struct{}{}[int64(C.ARANYA_QUIC_KIND_CHANNEL)-int64(core.KindChannel)]
var _ = [1]struct{}{}[int64(C.ARANYA_QUIC_KIND_SYNC)-int64(core.KindSync)]
var _ = [1]struct{}{}[int64(C.ARANYA_QUIC_KNOWN_PEERS_MAX)-int64(core.MaxKnownPeers)]

// maxPEMLen bounds each PEM input, so a garbage length fails cleanly
// instead of reading far out of bounds.
const maxPEMLen = 16 << 20

// maxPinnedPeers bounds pinned_peers_len for the same reason.
const maxPinnedPeers = 1 << 20

// cBytes views n bytes at p as a Go slice without copying. p may be nil only
// if n is 0. limit bounds n.
func cBytes(name string, p unsafe.Pointer, n C.size_t, limit uint64) ([]byte, error) {
	switch {
	case n == 0:
		return nil, nil
	case p == nil:
		return nil, errorf(C.ARANYA_QUIC_ERR_INVALID_ARGUMENT, "%s is NULL with length %d", name, uint64(n))
	case uint64(n) > limit:
		return nil, errorf(C.ARANYA_QUIC_ERR_INVALID_ARGUMENT, "%s length %d is over the limit %d", name, uint64(n), limit)
	}
	return unsafe.Slice((*byte)(p), int(n)), nil
}

// pinsFrom reads n fingerprints of ARANYA_QUIC_FINGERPRINT_LEN bytes at
// p; n is a count, bounded like every length.
func pinsFrom(name string, p *C.uint8_t, n C.size_t) ([]core.PeerID, error) {
	if n > maxPinnedPeers {
		return nil, errorf(C.ARANYA_QUIC_ERR_INVALID_ARGUMENT, "%s_len %d is over the limit %d", name, uint64(n), maxPinnedPeers)
	}
	raw, err := cBytes(name, unsafe.Pointer(p), n*C.ARANYA_QUIC_FINGERPRINT_LEN, maxPinnedPeers*C.ARANYA_QUIC_FINGERPRINT_LEN)
	if err != nil {
		return nil, err
	}
	var pins []core.PeerID
	for i := 0; i+C.ARANYA_QUIC_FINGERPRINT_LEN <= len(raw); i += C.ARANYA_QUIC_FINGERPRINT_LEN {
		pins = append(pins, core.PeerID(raw[i:i+C.ARANYA_QUIC_FINGERPRINT_LEN]))
	}
	return pins, nil
}

// cString reads a NUL-terminated string of fewer than max bytes. It never
// reads past the NUL or past max bytes.
func cString(p *C.aq_cchar, max int) (string, bool) {
	b := make([]byte, 0, 64)
	for i := 0; i < max; i++ {
		c := *(*byte)(unsafe.Add(unsafe.Pointer(p), i))
		if c == 0 {
			return string(b), true
		}
		b = append(b, c)
	}
	return "", false
}

// peerAddr parses a peer address argument: an IP literal with its port,
// or a host name with its port.
func peerAddr(p *C.aq_cchar) (core.Peer, error) {
	if p == nil {
		return core.Peer{}, errorf(C.ARANYA_QUIC_ERR_INVALID_ARGUMENT, "addr is NULL")
	}
	// Parsed in place: this runs on every send, and a parsed IP address
	// keeps no reference to the text (zoned addresses, which would, are
	// copied first; the engine refuses them anyway, and a host name is
	// copied before it is kept).
	n := -1
	for i := 0; i < C.ARANYA_QUIC_PEER_ADDR_MAX; i++ {
		if *(*byte)(unsafe.Add(unsafe.Pointer(p), i)) == 0 {
			n = i
			break
		}
	}
	if n < 0 {
		return core.Peer{}, errorf(C.ARANYA_QUIC_ERR_BAD_ADDRESS, "addr is not NUL-terminated within %d bytes", C.ARANYA_QUIC_PEER_ADDR_MAX)
	}
	s := unsafe.String((*byte)(unsafe.Pointer(p)), n)
	if ap, err := core.ParseAddr(s); err == nil {
		return core.PeerAt(ap).WithText(s), nil
	}
	return core.ParsePeer(strings.Clone(s))
}

// millis converts a config field in milliseconds; ARANYA_QUIC_DISABLED
// becomes disabled (negative) when allowed.
func millis(v C.uint32_t, disable bool) time.Duration {
	if disable && v == C.ARANYA_QUIC_DISABLED {
		return -1
	}
	return time.Duration(v) * time.Millisecond
}

// configFrom converts the C config into core's, copying every buffer. The
// receive callback comes back apart: it needs the endpoint's handle.
func configFrom(c *C.aq_cconfig) (core.Config, receiveCallback, *logCallback, error) {
	cfg, logTo, err := engineConfig(c)
	var cb receiveCallback
	if err == nil && c.struct_size >= C.uint32_t(unsafe.Offsetof(c.receive_callback_user)+unsafe.Sizeof(c.receive_callback_user)) {
		cb = receiveCallback{fn: c.receive_callback, user: c.receive_callback_user}
	}
	return cfg, cb, logTo, err
}

func engineConfig(c *C.aq_cconfig) (core.Config, *logCallback, error) {
	var cfg core.Config
	if c == nil {
		return cfg, nil, errorf(C.ARANYA_QUIC_ERR_INVALID_ARGUMENT, "cfg is NULL")
	}
	if uint64(c.struct_size) < uint64(C.AQ_CONFIG_V01_SIZE) {
		return cfg, nil, errorf(C.ARANYA_QUIC_ERR_INVALID_ARGUMENT,
			"cfg->struct_size is %d, this library needs at least %d: initialize it with aranya_quic_config_init",
			uint64(c.struct_size), uint64(C.AQ_CONFIG_V01_SIZE))
	}
	// covers reports whether the caller's struct has the field that ends
	// at offset end (fields appended after 0.1).
	covers := func(end uintptr) bool { return uint64(c.struct_size) >= uint64(end) }
	if c.bind_addr == nil {
		return cfg, nil, errorf(C.ARANYA_QUIC_ERR_INVALID_ARGUMENT, "cfg->bind_addr is NULL")
	}
	bind, ok := cString(c.bind_addr, C.ARANYA_QUIC_ADDR_MAX)
	if !ok {
		return cfg, nil, errorf(C.ARANYA_QUIC_ERR_BAD_ADDRESS, "cfg->bind_addr is not NUL-terminated within %d bytes", C.ARANYA_QUIC_ADDR_MAX)
	}
	if _, err := core.ParseBindAddr(bind); err != nil {
		return cfg, nil, err
	}
	cfg.BindAddr = bind

	pems := []struct {
		name string
		p    *C.uint8_t
		n    C.size_t
		dst  *[]byte
	}{
		{"cfg->cert_pem", c.cert_pem, c.cert_pem_len, &cfg.CertPEM},
		{"cfg->key_pem", c.key_pem, c.key_pem_len, &cfg.KeyPEM},
		{"cfg->ca_pem", c.ca_pem, c.ca_pem_len, &cfg.CAPEM},
	}
	for _, f := range pems {
		b, err := cBytes(f.name, unsafe.Pointer(f.p), f.n, maxPEMLen)
		if err != nil {
			return cfg, nil, err
		}
		if len(b) == 0 {
			return cfg, nil, errorf(C.ARANYA_QUIC_ERR_INVALID_ARGUMENT, "%s is empty", f.name)
		}
		*f.dst = append([]byte(nil), b...)
	}

	pins, err := pinsFrom("cfg->pinned_peers", c.pinned_peers, c.pinned_peers_len)
	if err != nil {
		return cfg, nil, err
	}
	cfg.PinnedPeers = pins

	cfg.MaxConnections = int(c.max_connections)
	cfg.IdleTimeout = millis(c.idle_timeout_ms, false)
	cfg.SendTimeout = millis(c.send_timeout_ms, true)
	cfg.KeepAlive = millis(c.keep_alive_ms, true)
	cfg.DrainTimeout = millis(c.drain_timeout_ms, false)
	cfg.HandshakeTimeout = millis(c.handshake_timeout_ms, false)
	cfg.MaxMessageSize = uint64(c.max_message_size)
	cfg.MaxQueueBytes = uint64(c.max_queue_bytes)
	cfg.MaxQueueMessages = int(c.max_queue_messages)
	cfg.MaxChannelsPerPeer = int(c.max_channels_per_peer)
	cfg.SendBufferBytes = int(c.send_buffer_bytes)
	if covers(unsafe.Offsetof(c.connect_timeout_ms) + unsafe.Sizeof(c.connect_timeout_ms)) {
		cfg.ConnectTimeout = millis(c.connect_timeout_ms, false)
	}
	if cfg.MaxMessageSize > C.ARANYA_QUIC_MAX_MESSAGE_SIZE_LIMIT {
		return cfg, nil, errorf(C.ARANYA_QUIC_ERR_INVALID_ARGUMENT, "cfg->max_message_size %d is over the limit %d", cfg.MaxMessageSize, uint64(C.ARANYA_QUIC_MAX_MESSAGE_SIZE_LIMIT))
	}

	switch c.congestion_control {
	case C.ARANYA_QUIC_CC_DEFAULT:
		// core picks: BBRv2 where the library has the quic-go hook, else NewReno.
	case C.ARANYA_QUIC_CC_RENO:
		cfg.CongestionControl = core.CongestionReno
	case C.ARANYA_QUIC_CC_BBR2:
		// core reports ErrInvalidConfig when this build lacks the hook.
		cfg.CongestionControl = core.CongestionBBR2
	default:
		return cfg, nil, errorf(C.ARANYA_QUIC_ERR_INVALID_ARGUMENT, "cfg->congestion_control %d is unknown", uint32(c.congestion_control))
	}

	if covers(unsafe.Offsetof(c.log_callback_user) + unsafe.Sizeof(c.log_callback_user)) {
		cfg.MaxOutboundBytesPerPeer = uint64(c.max_outbound_bytes_per_peer)
		cfg.MaxOutboundBytes = uint64(c.max_outbound_bytes)
		cfg.MaxEvents = int(c.max_events)
		cfg.ResolveTimeout = millis(c.resolve_timeout_ms, false)
	}
	if covers(unsafe.Offsetof(c.team_authorization) + unsafe.Sizeof(c.team_authorization)) {
		cfg.TeamAuthorization = c.team_authorization != 0
	}
	var logTo *logCallback
	if covers(unsafe.Offsetof(c.log_callback_user)+unsafe.Sizeof(c.log_callback_user)) && c.log_callback != nil {
		logTo = &logCallback{fn: c.log_callback, user: c.log_callback_user}
	}
	level := c.log_level
	if level == C.ARANYA_QUIC_LOG_OFF && logTo != nil {
		level = C.ARANYA_QUIC_LOG_INFO
	}
	if level != C.ARANYA_QUIC_LOG_OFF {
		var min slog.Level
		switch level {
		case C.ARANYA_QUIC_LOG_ERROR:
			min = slog.LevelError
		case C.ARANYA_QUIC_LOG_WARN:
			min = slog.LevelWarn
		case C.ARANYA_QUIC_LOG_INFO:
			min = slog.LevelInfo
		case C.ARANYA_QUIC_LOG_DEBUG:
			min = slog.LevelDebug
		default:
			return cfg, nil, errorf(C.ARANYA_QUIC_ERR_INVALID_ARGUMENT, "cfg->log_level %d is unknown", uint32(c.log_level))
		}
		if logTo != nil {
			cfg.Logger = slog.New(&callbackHandler{to: logTo, min: min})
		} else {
			cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: min}))
		}
	}

	if c.stateless_reset_key != nil {
		key := [C.ARANYA_QUIC_RESET_KEY_LEN]byte(unsafe.Slice((*byte)(unsafe.Pointer(c.stateless_reset_key)), C.ARANYA_QUIC_RESET_KEY_LEN))
		cfg.StatelessResetKey = &key
	}
	return cfg, logTo, nil
}
