// Package wire defines the bytes aranya-quic puts on a QUIC stream: the
// msgp-encoded channel header that opens every channel stream, the
// length-prefixed frames that follow it, and the control-stream messages.
// It has no knowledge of connections or endpoints, so it can be fuzzed and
// reused on its own.
package wire

//go:generate go tool msgp -file=header.go -o=header_gen.go -tests=false

// Kind says what a stream carries. The values are part of wire protocol v1
// and are never renumbered.
type Kind uint8

const (
	// KindChannel marks a stream of application messages for one
	// (team id, label) channel.
	KindChannel Kind = 1
	// KindSync marks a stream of Aranya sync messages of one sync type.
	KindSync Kind = 2
)

// TeamIDLen is the size of an Aranya team (graph) id.
const TeamIDLen = 32

// MaxLabelLen is the longest channel label, in bytes of UTF-8.
const MaxLabelLen = 255

// ChannelMessage is the body of a KindChannel header.
type ChannelMessage struct {
	TeamID [TeamIDLen]byte `msg:"team_id"`
	Label  string          `msg:"label"`
}

// SyncMessage is the body of a KindSync header.
type SyncMessage struct {
	SyncType uint32 `msg:"sync_type"`
}

// QuicMessage is the header at the start of every channel stream. It plays
// the role of the design's Rust enum: exactly one of Channel or Sync is set,
// and Kind says which.
type QuicMessage struct {
	Kind    Kind            `msg:"kind"`
	Channel *ChannelMessage `msg:"channel,omitempty"`
	Sync    *SyncMessage    `msg:"sync,omitempty"`
}
