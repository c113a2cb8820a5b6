package wire

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/quic-go/quic-go/quicvarint"
	"github.com/tinylib/msgp/msgp"
)

// ALPN is the TLS application protocol of wire protocol v2 (v1 had no
// receipt counts and no message limit in HELLO, so the two do not mix).
const ALPN = "aranya-quic/2"

// MaxHeaderLen bounds the encoded channel header. The largest valid header
// (a channel header with a 255-byte label) is well under 400 bytes; the
// slack leaves room for optional fields a later minor version may add.
const MaxHeaderLen = 1024

// Errors reported for malformed input. Each maps to a stream error code, so
// the peer learns why its stream was reset.
var (
	ErrHeaderTooLarge  = errors.New("wire: channel header too large")
	ErrMalformedHeader = errors.New("wire: malformed channel header")
	ErrUnknownKind     = errors.New("wire: unknown stream kind")
	ErrInvalidLabel    = errors.New("wire: invalid label")
	ErrFrameTooLarge   = errors.New("wire: frame too large")
	ErrTruncated       = errors.New("wire: stream ended inside a frame")
)

// StreamErrorCode values are used with RESET_STREAM and STOP_SENDING on
// channel streams. They are part of wire protocol v1 and never renumbered.
const (
	StreamCodeNone            uint64 = 0x0
	StreamCodeMalformedHeader uint64 = 0x101
	StreamCodeUnknownKind     uint64 = 0x102
	StreamCodeInvalidLabel    uint64 = 0x103
	StreamCodeFrameTooLarge   uint64 = 0x104
	StreamCodeShuttingDown    uint64 = 0x105
	StreamCodeTruncated       uint64 = 0x106
	StreamCodeUnexpected      uint64 = 0x107
	StreamCodeHeaderTimeout   uint64 = 0x108
	// StreamCodeNotAuthorized: the receiver authorizes channels by team
	// and the sender's peer id is not allowed on the stream's team (for a
	// sync stream: on any team), or its permission was revoked while the
	// stream was open.
	StreamCodeNotAuthorized uint64 = 0x109
)

// Connection close codes (application CONNECTION_CLOSE). Also part of v1.
const (
	ConnCodeGraceful      uint64 = 0x0
	ConnCodeDrainTimeout  uint64 = 0x201
	ConnCodeControlError  uint64 = 0x202
	ConnCodeShutdown      uint64 = 0x203
	ConnCodeHelloTimeout  uint64 = 0x204
	ConnCodeNotAuthorized uint64 = 0x205
)

// StreamCodeFor returns the stream error code that reports err to the peer.
func StreamCodeFor(err error) uint64 {
	switch {
	case errors.Is(err, ErrHeaderTooLarge), errors.Is(err, ErrMalformedHeader):
		return StreamCodeMalformedHeader
	case errors.Is(err, ErrUnknownKind):
		return StreamCodeUnknownKind
	case errors.Is(err, ErrInvalidLabel):
		return StreamCodeInvalidLabel
	case errors.Is(err, ErrFrameTooLarge):
		return StreamCodeFrameTooLarge
	case errors.Is(err, ErrTruncated):
		return StreamCodeTruncated
	default:
		return StreamCodeMalformedHeader
	}
}

// ValidateLabel checks the limits every label obeys on both ends.
func ValidateLabel(label string) error {
	if len(label) > MaxLabelLen {
		return fmt.Errorf("%w: %d bytes, the limit is %d", ErrInvalidLabel, len(label), MaxLabelLen)
	}
	if !utf8.ValidString(label) {
		return fmt.Errorf("%w: not valid UTF-8", ErrInvalidLabel)
	}
	return nil
}

// Validate checks that the header is well formed: a known kind with exactly
// its own body, and a valid label.
func (m *QuicMessage) Validate() error {
	switch m.Kind {
	case KindChannel:
		if m.Channel == nil || m.Sync != nil {
			return fmt.Errorf("%w: channel kind needs exactly a channel body", ErrMalformedHeader)
		}
		return ValidateLabel(m.Channel.Label)
	case KindSync:
		if m.Sync == nil || m.Channel != nil {
			return fmt.Errorf("%w: sync kind needs exactly a sync body", ErrMalformedHeader)
		}
		return nil
	default:
		return fmt.Errorf("%w: %d", ErrUnknownKind, m.Kind)
	}
}

// AppendHeader appends the stream prologue for m: varint length, then the
// msgp encoding. It validates m first so a bad header never leaves.
func AppendHeader(b []byte, m *QuicMessage) ([]byte, error) {
	if err := m.Validate(); err != nil {
		return b, err
	}
	body, err := m.MarshalMsg(nil)
	if err != nil {
		return b, fmt.Errorf("%w: %w", ErrMalformedHeader, err)
	}
	if len(body) > MaxHeaderLen {
		return b, ErrHeaderTooLarge
	}
	b = quicvarint.Append(b, uint64(len(body)))
	return append(b, body...), nil
}

// DecodeHeader parses and validates an encoded header body (without its
// length prefix).
func DecodeHeader(body []byte) (*QuicMessage, error) {
	var m QuicMessage
	rest, err := m.UnmarshalMsg(body)
	if err != nil {
		// Distinguish "a kind we do not know" from plain garbage where the
		// kind field itself parsed.
		if m.Kind != 0 && m.Kind != KindChannel && m.Kind != KindSync {
			return nil, fmt.Errorf("%w: %d", ErrUnknownKind, m.Kind)
		}
		return nil, fmt.Errorf("%w: %w", ErrMalformedHeader, err)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrMalformedHeader, len(rest))
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// ReadHeader reads the stream prologue. io.EOF before the first byte means
// the peer opened and closed the stream without using it, which is benign.
func ReadHeader(r *bufio.Reader) (*QuicMessage, error) {
	n, err := readVarint(r)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, ErrTruncated) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: header length: %w", ErrMalformedHeader, err)
	}
	if n > MaxHeaderLen {
		return nil, fmt.Errorf("%w: %d bytes", ErrHeaderTooLarge, n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, fmt.Errorf("%w: header body: %w", ErrTruncated, err)
	}
	return DecodeHeader(body)
}

// AppendFrameHeader appends the length prefix of a frame of n bytes.
func AppendFrameHeader(b []byte, n int) []byte {
	return quicvarint.Append(b, uint64(n))
}

// FrameHeaderLen is the size of the length prefix of a frame of n bytes.
func FrameHeaderLen(n int) int {
	return quicvarint.Len(uint64(n))
}

// ReadFrameLen reads one frame's length prefix and checks it against max.
// A clean io.EOF means the stream ended between frames.
func ReadFrameLen(r *bufio.Reader, max uint64) (uint64, error) {
	n, err := readVarint(r)
	if err != nil {
		return 0, err
	}
	if n > max {
		return 0, fmt.Errorf("%w: %d bytes, the limit is %d", ErrFrameTooLarge, n, max)
	}
	return n, nil
}

// ReadFramePayload reads exactly len(p) payload bytes.
func ReadFramePayload(r *bufio.Reader, p []byte) error {
	if _, err := io.ReadFull(r, p); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("%w: %w", ErrTruncated, err)
		}
		return err
	}
	return nil
}

// payloadChunk is how much of a frame is allocated ahead of the bytes
// that arrived: a peer that declares a large frame and stalls holds at
// most this much of our memory, not the declared size.
const payloadChunk = 64 << 10

// ReadPayload reads a frame payload of n bytes, growing its buffer as the
// bytes arrive rather than trusting the declared length up front.
func ReadPayload(r *bufio.Reader, n uint64) ([]byte, error) {
	if n <= payloadChunk {
		p := make([]byte, n)
		return p, ReadFramePayload(r, p)
	}
	p := make([]byte, 0, payloadChunk)
	for uint64(len(p)) < n {
		if len(p) == cap(p) {
			grown := make([]byte, len(p), min(uint64(2*cap(p)), n))
			copy(grown, p)
			p = grown
		}
		m, err := io.ReadAtLeast(r, p[len(p):cap(p)], 1)
		p = p[:len(p)+m]
		if err != nil {
			if uint64(len(p)) == n {
				break
			}
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, fmt.Errorf("%w: %w", ErrTruncated, io.ErrUnexpectedEOF)
			}
			return nil, err
		}
	}
	return p, nil
}

// ReadFrame reads one whole frame; used by tests and fuzzers, while the
// engine reads length and payload separately to size its buffers.
func ReadFrame(r *bufio.Reader, max uint64) ([]byte, error) {
	n, err := ReadFrameLen(r, max)
	if err != nil {
		return nil, err
	}
	return ReadPayload(r, n)
}

var _ msgp.Marshaler = (*QuicMessage)(nil)
