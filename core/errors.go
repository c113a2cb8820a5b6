package core

import (
	"errors"
	"fmt"

	"github.com/aranya-quic/aranya-quic/core/wire"
)

// Errors returned by the engine. Callers test them with errors.Is; the
// returned errors wrap these with detail.
var (
	// ErrInvalidConfig: a Config field is out of range or a PEM input does
	// not parse.
	ErrInvalidConfig = errors.New("aranya-quic: invalid config")
	// ErrBadAddress: a peer address is not "ip:port" / "[ipv6]:port" with a
	// non-zero port and a unicast address.
	ErrBadAddress = errors.New("aranya-quic: bad address")
	// ErrInvalidLabel: a label longer than 255 bytes or not UTF-8.
	ErrInvalidLabel = wire.ErrInvalidLabel
	// ErrMessageTooLarge: a message over Config.MaxMessageSize.
	ErrMessageTooLarge = errors.New("aranya-quic: message too large")
	// ErrClosed: the endpoint was closed.
	ErrClosed = errors.New("aranya-quic: endpoint closed")
	// ErrTimeout: the send timeout (or the caller's deadline) passed.
	ErrTimeout = errors.New("aranya-quic: timed out")
	// ErrWouldBlock: Receive found the queue empty, or a non-blocking send
	// found the outbound queue full.
	ErrWouldBlock = errors.New("aranya-quic: would block")
	// ErrResolve: a peer's host name did not resolve to a usable address
	// in time.
	ErrResolve = errors.New("aranya-quic: host name not resolved")
	// ErrBufferTooSmall: Receive's buffer cannot hold the oldest message;
	// the message stays queued and the needed size is returned.
	ErrBufferTooSmall = errors.New("aranya-quic: buffer too small")
	// ErrConnection: the connection to the peer could not be made or died.
	ErrConnection = errors.New("aranya-quic: connection failed")
	// ErrTLS: the TLS handshake failed or the peer rejected our
	// certificate (or we rejected its).
	ErrTLS = errors.New("aranya-quic: TLS authentication failed")
	// ErrUnconfirmed: messages that Send accepted were not confirmed by
	// the peer (a close or free whose drain timed out, or a connection
	// that died); they may not have been delivered. The error is an
	// *UnconfirmedError with the count.
	ErrUnconfirmed = errors.New("aranya-quic: accepted messages not confirmed by the peer")
	// ErrNotAuthorized: the peer authorizes channels by team and does not
	// allow this endpoint on the channel's team (for sync messages: on any
	// team). The message that gets it was not accepted.
	ErrNotAuthorized = errors.New("aranya-quic: not authorized by the peer for this team")
)

// UnconfirmedError reports accepted messages that the peer did not
// confirm before the library gave up on them.
type UnconfirmedError struct {
	// Messages is how many accepted messages were not confirmed.
	Messages uint64
	// Peers is how many connections had unconfirmed messages.
	Peers int
	// Detail says why (drain timeout, connection lost, ...).
	Detail string
}

func (e *UnconfirmedError) Error() string {
	return fmt.Sprintf("%v: %d message(s) on %d connection(s): %s", ErrUnconfirmed, e.Messages, e.Peers, e.Detail)
}

// Is makes errors.Is(err, ErrUnconfirmed) hold.
func (e *UnconfirmedError) Is(target error) bool { return target == ErrUnconfirmed }
