package wire

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"github.com/quic-go/quic-go/quicvarint"
)

// Control message types, sent on the one unidirectional stream each side
// opens per connection. Unknown types are skipped, so later versions can add
// messages without breaking v1 peers.
const (
	// ControlHello is the first message each side sends. From the acceptor
	// it also confirms that the dialer's certificate was accepted: in TLS 1.3
	// the client finishes its handshake before the server has checked the
	// client certificate, so without it a rejected dialer would not know.
	ControlHello uint64 = 0x01
	// ControlGoAway says the sender will open no more streams on this
	// connection and asks the receiver to do the same and finish its own.
	ControlGoAway uint64 = 0x02
	// ControlDone says every stream the sender opened on this connection has
	// been read to its end by the receiver; nothing more will come.
	ControlDone uint64 = 0x03
)

// InstanceIDLen is the size of the random id an endpoint draws at start.
// Peers compare ids to settle a simultaneous open the same way on both sides.
const InstanceIDLen = 16

// MaxControlPayload bounds one control message.
const MaxControlPayload = 4096

// ErrControl reports a malformed control stream.
var ErrControl = errors.New("wire: malformed control message")

// ControlMessage is one decoded control message.
type ControlMessage struct {
	Type    uint64
	Payload []byte
}

// AppendControl appends one control message: type, payload length, payload.
func AppendControl(b []byte, typ uint64, payload []byte) []byte {
	b = quicvarint.Append(b, typ)
	b = quicvarint.Append(b, uint64(len(payload)))
	return append(b, payload...)
}

// ReadControl reads one control message.
func ReadControl(r *bufio.Reader) (ControlMessage, error) {
	typ, err := readVarint(r)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return ControlMessage{}, io.EOF
		}
		return ControlMessage{}, fmt.Errorf("%w: %w", ErrControl, err)
	}
	n, err := readVarint(r)
	if err != nil {
		return ControlMessage{}, fmt.Errorf("%w: %w", ErrControl, err)
	}
	if n > MaxControlPayload {
		return ControlMessage{}, fmt.Errorf("%w: payload of %d bytes", ErrControl, n)
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r, p); err != nil {
		return ControlMessage{}, fmt.Errorf("%w: %w", ErrControl, err)
	}
	return ControlMessage{Type: typ, Payload: p}, nil
}

// HELLO flags, a varint after the message limit (absent means 0).
const (
	// HelloAuthorizesTeams says the sender authorizes each channel stream
	// it accepts by the peer's team membership: right after a stream's
	// header it sends a receipt count of 0 when it accepts the stream, or
	// resets it with StreamCodeNotAuthorized. A peer that knows this waits
	// for that verdict before it sends a new stream's first message.
	HelloAuthorizesTeams uint64 = 1 << 0
)

// Hello is the HELLO payload.
type Hello struct {
	Instance       [InstanceIDLen]byte
	MaxMessageSize uint64
	Flags          uint64
}

// AppendHello appends the HELLO payload: the instance id, then the largest
// message the sender accepts (a varint), so a peer refuses an oversize
// message at send time instead of the receiver resetting the stream.
func AppendHello(b []byte, instance [InstanceIDLen]byte, maxMessageSize uint64) []byte {
	return AppendHelloFields(b, Hello{Instance: instance, MaxMessageSize: maxMessageSize})
}

// AppendHelloFields appends h; flags are written only when set, so a HELLO
// without them is the one earlier versions send.
func AppendHelloFields(b []byte, h Hello) []byte {
	b = append(b, h.Instance[:]...)
	b = quicvarint.Append(b, h.MaxMessageSize)
	if h.Flags != 0 {
		b = quicvarint.Append(b, h.Flags)
	}
	return b
}

// ParseHello reads a HELLO payload's instance id and message limit.
func ParseHello(p []byte) (instance [InstanceIDLen]byte, maxMessageSize uint64, err error) {
	h, err := ParseHelloFields(p)
	return h.Instance, h.MaxMessageSize, err
}

// ParseHelloFields reads a HELLO payload. Bytes after the flags are
// ignored, so a later version can append fields; flags that do not parse
// count as none, as they would for a version that sends none.
func ParseHelloFields(p []byte) (Hello, error) {
	var h Hello
	if len(p) <= InstanceIDLen {
		return h, fmt.Errorf("%w: HELLO of %d bytes", ErrControl, len(p))
	}
	copy(h.Instance[:], p)
	n := 0
	var err error
	h.MaxMessageSize, n, err = quicvarint.Parse(p[InstanceIDLen:])
	if err != nil {
		return h, fmt.Errorf("%w: HELLO message limit: %w", ErrControl, err)
	}
	if rest := p[InstanceIDLen+n:]; len(rest) > 0 {
		if flags, _, err := quicvarint.Parse(rest); err == nil {
			h.Flags = flags
		}
	}
	return h, nil
}

// AppendAck appends a receipt count: how many messages of the stream the
// receiver has queued so far, counted from the stream's first frame.
func AppendAck(b []byte, queued uint64) []byte {
	return quicvarint.Append(b, queued)
}

// ReadAck reads one receipt count from the receiver's direction of a
// channel stream; io.EOF when the receiver finished that direction.
func ReadAck(r *bufio.Reader) (uint64, error) {
	return readVarint(r)
}
