package core

import (
	"fmt"
	"log/slog"
	"time"
)

// Defaults for zero Config fields.
const (
	DefaultMaxConnections   = 32
	DefaultIdleTimeout      = 30 * time.Second
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultSendTimeout      = 10 * time.Second
	DefaultDrainTimeout     = 5 * time.Second
	// DefaultConnectTimeout bounds a dial (handshake and the peer's HELLO);
	// it is shorter than the default send timeout, so that a peer that
	// never answers is reported as ErrConnection, not as ErrTimeout.
	DefaultConnectTimeout     = 5 * time.Second
	DefaultMaxMessageSize     = 16 << 20
	DefaultMaxQueueBytes      = 64 << 20
	DefaultMaxQueueMessages   = 65536
	DefaultMaxChannelsPerPeer = 1024
	// DefaultSendBufferBytes is how much a channel buffers before Send
	// blocks; buffering is what lets many small messages share packets.
	DefaultSendBufferBytes = 256 << 10
	// DefaultMaxOutboundBytesPerPeer and DefaultMaxOutboundBytes bound what
	// the non-blocking sends queue for one peer and for all peers.
	DefaultMaxOutboundBytesPerPeer = 4 << 20
	DefaultMaxOutboundBytes        = 64 << 20
	// DefaultMaxEvents bounds the events waiting to be taken.
	DefaultMaxEvents = 4096
	// DefaultResolveTimeout bounds resolving a peer's host name.
	DefaultResolveTimeout = 5 * time.Second
)

// Config configures an Endpoint. Zero values take the defaults above.
type Config struct {
	// BindAddr is the local UDP address, e.g. "127.0.0.1:0". Both listening
	// and dialing use this one socket.
	BindAddr string
	// CertPEM and KeyPEM hold this endpoint's certificate chain (leaf first)
	// and private key.
	CertPEM, KeyPEM []byte
	// CAPEM holds the certificates of the CAs whose peers are trusted.
	CAPEM []byte
	// PinnedPeers, when non-empty, restricts peers to leaf certificates
	// whose SHA-256 is listed, in addition to the CA check.
	PinnedPeers [][32]byte

	// MaxConnections bounds the connection map (default 32). When it is full
	// and a new connection is needed the least recently used one is drained
	// and closed.
	MaxConnections int
	// IdleTimeout closes a connection that has heard nothing from its peer
	// for this long (default 30s).
	IdleTimeout time.Duration
	// KeepAlive is the keep-alive period. 0 picks IdleTimeout/3; negative
	// disables keep-alives (idle connections then time out).
	KeepAlive time.Duration
	// HandshakeTimeout bounds the TLS handshake and the peer's HELLO of any
	// connection, incoming or outgoing (default 10s), and how long an
	// incoming stream may take to deliver its channel header. A dial is
	// also bounded by ConnectTimeout, and a send by its own timeout.
	HandshakeTimeout time.Duration
	// ConnectTimeout bounds one outgoing dial: the QUIC handshake and the
	// peer's HELLO (default 5s). A peer that does not answer within it
	// fails the send with ErrConnection; a send whose own timeout ends
	// first gets ErrTimeout, and the dial goes on for the sends after it.
	// When set, it must be shorter than SendTimeout.
	ConnectTimeout time.Duration
	// SendTimeout bounds one Send, including a dial and waiting under
	// backpressure (default 10s). Negative: no timeout beyond the context.
	SendTimeout time.Duration
	// DrainTimeout bounds a graceful close of one connection (default 5s).
	DrainTimeout time.Duration
	// MaxMessageSize is the largest message sent or accepted (default 16 MiB).
	MaxMessageSize uint64
	// MaxQueueBytes and MaxQueueMessages bound the receive queue (defaults
	// 64 MiB and 65536). When full, streams stop being read and QUIC flow
	// control pushes back on senders. MaxQueueBytes must be at least
	// MaxMessageSize.
	MaxQueueBytes    uint64
	MaxQueueMessages int
	// MaxChannelsPerPeer bounds the channel streams a peer may have open on
	// one connection at once (default 1024).
	MaxChannelsPerPeer int
	// SendBufferBytes bounds what one channel buffers before Send blocks
	// (default 256 KiB).
	SendBufferBytes int
	// CongestionControl names the congestion controller: "bbr2" or
	// "reno". Empty picks the default: BBRv2 in builds with the quic-go hook
	// (make lib), NewReno otherwise. "bbr2" without the hook is an error.
	CongestionControl string
	// StatelessResetKey, when set, is used as the QUIC stateless reset key.
	// When nil it is derived from the private key, so that a restarted
	// endpoint with the same identity resets stale connections at once.
	StatelessResetKey *[32]byte
	// Logger receives diagnostics; nil logs nothing.
	Logger *slog.Logger
	// OnMessage, when set, receives every message instead of the receive
	// queue (Receive then never returns one). It is called on the
	// engine's goroutines: one call at a time and in order for the
	// messages of one channel, concurrently for different channels. msg
	// is valid only during the call. While it runs, its stream is not
	// read further, so a slow OnMessage pushes back on that channel's
	// sender. Close waits for the calls in progress and makes no more.
	OnMessage func(ch *Channel, msg []byte)
	// MaxOutboundBytesPerPeer and MaxOutboundBytes bound the bytes the
	// non-blocking sends hold queued for one peer address and for all of
	// them (defaults 4 MiB and 64 MiB); beyond them TrySend returns
	// ErrWouldBlock. An empty queue always takes one message.
	MaxOutboundBytesPerPeer uint64
	MaxOutboundBytes        uint64
	// MaxEvents bounds the events waiting to be taken (default 4096); the
	// ones that do not fit are dropped and counted.
	MaxEvents int
	// ResolveTimeout bounds resolving a peer's host name (default 5s).
	ResolveTimeout time.Duration
	// Resolver looks host names up; nil uses net.DefaultResolver.
	Resolver HostResolver
	// TeamAuthorization turns per-team authorization on: a peer may open
	// channels only on the teams AllowTeam allowed its peer id on, and
	// sync streams only when allowed on at least one team. Off (the
	// default), every trusted peer may use every team.
	TeamAuthorization bool
}

// withDefaults returns c with zero fields filled and checks the ranges.
func (c Config) withDefaults() (Config, error) {
	if c.BindAddr == "" {
		return c, fmt.Errorf("%w: empty bind address", ErrInvalidConfig)
	}
	if c.MaxConnections == 0 {
		c.MaxConnections = DefaultMaxConnections
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.KeepAlive == 0 {
		c.KeepAlive = c.IdleTimeout / 3
	}
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if c.SendTimeout == 0 {
		c.SendTimeout = DefaultSendTimeout
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = DefaultDrainTimeout
	}
	if c.ConnectTimeout > 0 && c.SendTimeout > 0 && c.ConnectTimeout >= c.SendTimeout {
		return c, fmt.Errorf("%w: ConnectTimeout %v must be shorter than SendTimeout %v", ErrInvalidConfig, c.ConnectTimeout, c.SendTimeout)
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.MaxMessageSize == 0 {
		c.MaxMessageSize = DefaultMaxMessageSize
	}
	if c.MaxQueueBytes == 0 {
		c.MaxQueueBytes = DefaultMaxQueueBytes
		if c.MaxQueueBytes < c.MaxMessageSize {
			c.MaxQueueBytes = c.MaxMessageSize
		}
	}
	if c.MaxQueueMessages == 0 {
		c.MaxQueueMessages = DefaultMaxQueueMessages
	}
	if c.MaxChannelsPerPeer == 0 {
		c.MaxChannelsPerPeer = DefaultMaxChannelsPerPeer
	}
	if c.SendBufferBytes == 0 {
		c.SendBufferBytes = DefaultSendBufferBytes
	}
	if c.MaxOutboundBytesPerPeer == 0 {
		c.MaxOutboundBytesPerPeer = DefaultMaxOutboundBytesPerPeer
	}
	if c.MaxOutboundBytes == 0 {
		c.MaxOutboundBytes = DefaultMaxOutboundBytes
	}
	if c.MaxEvents == 0 {
		c.MaxEvents = DefaultMaxEvents
	}
	if c.ResolveTimeout == 0 {
		c.ResolveTimeout = DefaultResolveTimeout
	}
	cc, err := resolveCongestion(c.CongestionControl)
	if err != nil {
		return c, err
	}
	c.CongestionControl = cc
	switch {
	case c.MaxConnections < 1:
		return c, fmt.Errorf("%w: MaxConnections %d < 1", ErrInvalidConfig, c.MaxConnections)
	case c.IdleTimeout < 0, c.HandshakeTimeout < 0, c.DrainTimeout < 0, c.ConnectTimeout < 0:
		return c, fmt.Errorf("%w: negative timeout", ErrInvalidConfig)
	case c.MaxMessageSize > 1<<30:
		return c, fmt.Errorf("%w: MaxMessageSize %d over 1 GiB", ErrInvalidConfig, c.MaxMessageSize)
	case c.MaxQueueBytes < c.MaxMessageSize:
		return c, fmt.Errorf("%w: MaxQueueBytes %d below MaxMessageSize %d", ErrInvalidConfig, c.MaxQueueBytes, c.MaxMessageSize)
	case c.MaxQueueMessages < 1:
		return c, fmt.Errorf("%w: MaxQueueMessages %d < 1", ErrInvalidConfig, c.MaxQueueMessages)
	case c.MaxChannelsPerPeer < 1:
		return c, fmt.Errorf("%w: MaxChannelsPerPeer %d < 1", ErrInvalidConfig, c.MaxChannelsPerPeer)
	case c.MaxEvents < 1:
		return c, fmt.Errorf("%w: MaxEvents %d < 1", ErrInvalidConfig, c.MaxEvents)
	case c.ResolveTimeout < 0:
		return c, fmt.Errorf("%w: negative ResolveTimeout", ErrInvalidConfig)
	case c.SendBufferBytes < 1:
		return c, fmt.Errorf("%w: SendBufferBytes %d < 1", ErrInvalidConfig, c.SendBufferBytes)
	}
	return c, nil
}
