package core

import (
	"net/netip"

	"github.com/aranya-quic/aranya-quic/core/wire"
)

// Kind says whether a message belongs to an application channel or is an
// Aranya sync message.
type Kind = wire.Kind

// Kinds of message.
const (
	KindChannel = wire.KindChannel
	KindSync    = wire.KindSync
)

// TeamID is an Aranya team (graph) id.
type TeamID = [wire.TeamIDLen]byte

// PeerID is the SHA-256 of a peer's leaf certificate (DER).
type PeerID = [32]byte

// Channel describes where a received message came from.
type Channel struct {
	// Addr is the peer's address: its listening address, since peers dial
	// from the socket they listen on.
	Addr netip.AddrPort
	Kind Kind
	// TeamID and Label are set for KindChannel.
	TeamID TeamID
	Label  string
	// SyncType is set for KindSync.
	SyncType uint32
	// PeerID identifies the peer's certificate, for membership checks.
	PeerID PeerID
}

// Stats are counters since the endpoint started, and current gauges.
type Stats struct {
	OpenConnections   uint64 // gauge: connections in the map
	Dials             uint64 // outgoing connections attempted
	Accepts           uint64 // incoming connections that completed the handshake
	Evictions         uint64 // connections evicted because the map was full
	HandshakeFailures uint64 // dials or accepts that failed TLS or the confirmation
	OpenStreams       uint64 // gauge: channel streams open, both directions
	MessagesSent      uint64
	BytesSent         uint64 // payload bytes
	MessagesReceived  uint64 // messages put on the receive queue
	BytesReceived     uint64
	QueueMessages     uint64 // gauge
	QueueBytes        uint64 // gauge
	StreamsReset      uint64 // incoming streams reset for protocol errors
	ConnectionsLost   uint64 // connections that ended without a graceful close
	// MessagesUnconfirmed counts accepted messages the library gave up on
	// without the peer's confirmation (eviction or a close whose drain
	// timed out, a connection that died, a stream the peer reset).
	MessagesUnconfirmed uint64
	// DroppedAtClose counts received messages that Close dropped because
	// the application had not taken them from the queue (they had been
	// confirmed to their senders). Readable after Close, from Go.
	DroppedAtClose uint64
	// OutboundMessages and OutboundBytes are what TrySend holds queued,
	// not yet handed to a stream (gauges).
	OutboundMessages uint64
	OutboundBytes    uint64
	// SendsFailed counts queued messages given up before they were sent
	// (one EventSendFailed each).
	SendsFailed uint64
	// EventsDropped counts events dropped because the event queue was
	// full.
	EventsDropped uint64
	// ConnectionsRevoked counts connections SetTrust closed because their
	// peer's certificate no longer verified.
	ConnectionsRevoked uint64
	// MessagesRevoked counts received messages dropped undelivered
	// because their peer, or its team, was revoked before the application
	// took them.
	MessagesRevoked uint64
	// StreamsRefused counts incoming streams refused by team
	// authorization.
	StreamsRefused uint64
	// CongestionControl names the algorithm new connections use.
	CongestionControl string
}
