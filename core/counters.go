package core

import "sync/atomic"

// counters are the endpoint's live statistics, updated without locks.
type counters struct {
	dials, accepts, evictions, handshakeFailures atomic.Uint64
	openStreams                                  atomic.Int64
	messagesSent, bytesSent                      atomic.Uint64
	messagesReceived, bytesReceived              atomic.Uint64
	streamsReset, connectionsLost                atomic.Uint64
	messagesUnconfirmed, droppedAtClose          atomic.Uint64
	sendsFailed                                  atomic.Uint64
	connectionsRevoked, messagesRevoked          atomic.Uint64
	streamsRefused                               atomic.Uint64
}
