package fault

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/quicvarint"
	"github.com/stretchr/testify/require"

	"github.com/aranya-quic/aranya-quic/core"
	"github.com/aranya-quic/aranya-quic/core/wire"
)

// msgp by hand, so that headers the encoder refuses can be sent.
func mpStr(s string) []byte {
	switch n := len(s); {
	case n < 32:
		return append([]byte{0xa0 | byte(n)}, s...)
	case n < 256:
		return append([]byte{0xd9, byte(n)}, s...)
	default:
		return append([]byte{0xda, byte(n >> 8), byte(n)}, s...)
	}
}

func mpBin(b []byte) []byte { return append([]byte{0xc4, byte(len(b))}, b...) }

// channelBody is the msgp of {kind: kind, channel: {team_id, label}}.
func channelBody(kind byte, label string) []byte {
	b := []byte{0x82}
	b = append(b, mpStr("kind")...)
	b = append(b, kind)
	b = append(b, mpStr("channel")...)
	b = append(b, 0x82)
	b = append(b, mpStr("team_id")...)
	tid := team(9)
	b = append(b, mpBin(tid[:])...)
	b = append(b, mpStr("label")...)
	b = append(b, mpStr(label)...)
	return b
}

func prefixed(body []byte) []byte { return append(quicvarint.Append(nil, uint64(len(body))), body...) }

// expectReset reads s until the endpoint resets it and checks the code.
func expectReset(t testing.TB, s *quic.Stream, code uint64) {
	t.Helper()
	_ = s.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.ReadAll(s)
	var se *quic.StreamError
	require.True(t, errors.As(err, &se), "want a stream reset, got %v", err)
	require.True(t, se.Remote)
	require.Equal(t, quic.StreamErrorCode(code), se.ErrorCode, "stream error code")
}

// expectStopped checks how the endpoint stops a channel stream whose
// frames break the protocol after a valid header: it finishes its own
// direction with the count of messages it queued (so the sender knows
// which of its messages were delivered) and, when the sender is still
// writing, stops it with the code.
func expectStopped(t testing.TB, s *quic.Stream, code uint64, queued uint64, writing bool) {
	t.Helper()
	_ = s.SetReadDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(s)
	var last uint64
	for {
		n, err := wire.ReadAck(r)
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err, "the receiver's direction ends cleanly")
		last = n
	}
	require.Equal(t, queued, last, "the final receipt count is what was queued")
	if !writing {
		return
	}
	_ = s.SetWriteDeadline(time.Now().Add(10 * time.Second))
	var err error
	for err == nil {
		_, err = s.Write(make([]byte, 1024))
	}
	var se *quic.StreamError
	require.True(t, errors.As(err, &se), "want STOP_SENDING, got %v", err)
	require.True(t, se.Remote)
	require.Equal(t, quic.StreamErrorCode(code), se.ErrorCode, "stream error code")
}

// A peer that ignores the announced limit (an older or hostile one) sends
// good messages, then one over the limit, then more: the good ones before
// it are delivered, the endpoint stops the stream, and its final receipt
// count tells the sender exactly how many were queued, so no message is
// lost without the sender learning of it.
func TestOversizeFrameReportsWhatWasQueued(t *testing.T) {
	e := hostileEndpoint(t)
	p := mustDialRaw(t, e.LocalAddr())
	require.Equal(t, uint64(64<<10), p.peerMaxMessage, "HELLO announces the limit")
	b := header(t, "over")
	for i := 0; i < 5; i++ {
		b = append(b, frame(payload("over", i, 100))...)
	}
	b = append(b, frame(make([]byte, 64<<10+1))...)
	for i := 6; i < 20; i++ {
		b = append(b, frame(payload("over", i, 100))...)
	}
	s := p.open(nil)
	_, _ = s.Write(b) // may fail already with the endpoint's STOP_SENDING
	expectStopped(t, s, wire.StreamCodeFrameTooLarge, 5, true)
	check := newOrderCheck()
	for _, r := range recvN(t, e, 5, 10*time.Second) {
		check.add(t, r, 100)
	}
	require.Equal(t, 5, check.next["over"])
	requireQuiet(t, e, 100*time.Millisecond)
}

func hostileEndpoint(t testing.TB) *core.Endpoint {
	cfg := config(t, "target")
	cfg.MaxMessageSize = 64 << 10
	cfg.MaxQueueBytes = 1 << 20
	cfg.HandshakeTimeout = 2 * time.Second
	return endpoint(t, cfg)
}

// Each malformed stream is reset with its own code; the connection lives
// on (a good stream on the same connection is delivered), a well-behaved
// peer is still served, StreamsReset counts the reset, and nothing of the
// bad stream reaches the receive queue.
func TestHostileStreams(t *testing.T) {
	const maxMsg = 64 << 10
	badUTF8 := "ok\xff\xfe"
	cases := []struct {
		name  string
		bytes func(t testing.TB) []byte
		fin   bool
		code  uint64
	}{
		{"garbage header", func(testing.TB) []byte { return prefixed([]byte{0xff, 0xfe, 0xfd, 0xfc, 0xfb}) }, false, wire.StreamCodeMalformedHeader},
		{"random bytes header", func(testing.TB) []byte {
			return prefixed([]byte("\x93\x01\x02\x03 this is not a channel header"))
		}, false, wire.StreamCodeMalformedHeader},
		{"header length over the limit", func(testing.TB) []byte { return quicvarint.Append(nil, wire.MaxHeaderLen+1) }, false, wire.StreamCodeMalformedHeader},
		{"trailing bytes after the header", func(t testing.TB) []byte {
			return prefixed(append(channelBody(1, "x"), 0xc0))
		}, false, wire.StreamCodeMalformedHeader},
		{"unknown kind", func(testing.TB) []byte { return prefixed(append([]byte{0x81}, append(mpStr("kind"), 7)...)) }, false, wire.StreamCodeUnknownKind},
		{"unknown kind with a body", func(testing.TB) []byte { return prefixed(channelBody(9, "x")) }, false, wire.StreamCodeUnknownKind},
		{"channel kind without a body", func(testing.TB) []byte { return prefixed(append([]byte{0x81}, append(mpStr("kind"), 1)...)) }, false, wire.StreamCodeMalformedHeader},
		{"label of 256 bytes", func(testing.TB) []byte { return prefixed(channelBody(1, strings.Repeat("l", 256))) }, false, wire.StreamCodeInvalidLabel},
		{"label of 600 bytes", func(testing.TB) []byte { return prefixed(channelBody(1, strings.Repeat("l", 600))) }, false, wire.StreamCodeInvalidLabel},
		{"label not UTF-8", func(testing.TB) []byte { return prefixed(channelBody(1, badUTF8)) }, false, wire.StreamCodeInvalidLabel},
		{"frame over MaxMessageSize", func(t testing.TB) []byte {
			return append(header(t, "big"), quicvarint.Append(nil, maxMsg+1)...)
		}, false, wire.StreamCodeFrameTooLarge},
		{"frame length of 2^62-1", func(t testing.TB) []byte {
			return append(header(t, "huge"), quicvarint.Append(nil, quicvarint.Max)...)
		}, false, wire.StreamCodeFrameTooLarge},
		{"frame cut short by FIN", func(t testing.TB) []byte {
			return append(append(header(t, "cut"), quicvarint.Append(nil, 100)...), make([]byte, 10)...)
		}, true, wire.StreamCodeTruncated},
		{"frame length cut short by FIN", func(t testing.TB) []byte {
			return append(header(t, "cutlen"), 0x80) // first byte of a 4-byte varint
		}, true, wire.StreamCodeTruncated},
		{"header cut short by FIN", func(t testing.TB) []byte { return header(t, "cuthdr")[:10] }, true, wire.StreamCodeTruncated},
		{"header length cut short by FIN", func(t testing.TB) []byte { return []byte{0x40} }, true, wire.StreamCodeTruncated},
	}
	e := hostileEndpoint(t)
	before := heapInUse()
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resets := e.Stats().StreamsReset
			p := mustDialRaw(t, e.LocalAddr())
			s := p.open(tc.bytes(t))
			if tc.fin {
				require.NoError(t, s.Close())
			}
			if tc.code == wire.StreamCodeFrameTooLarge || strings.HasPrefix(tc.name, "frame") {
				expectStopped(t, s, tc.code, 0, !tc.fin)
			} else {
				expectReset(t, s, tc.code)
			}
			onlyTheStreamWasReset(t, e, p, resets, fmt.Sprintf("after%d", i))

			goodPeerDelivers(t, e, 5)
			requireQuiet(t, e, 50*time.Millisecond)
		})
	}
	after := heapInUse()
	t.Logf("heap in use: %d KiB before, %d KiB after", before>>10, after>>10)
	require.Less(t, after, before+64<<20, "memory stays bounded")
}

// A peer opens thousands of streams over several connections, each with a
// partial header, and leaves them idle. The per-connection stream limit
// holds, memory stays bounded, a well-behaved peer is still served, and
// everything is released when the connections go.
func TestThousandsOfIdleStreams(t *testing.T) {
	cfg := config(t, "target")
	cfg.MaxChannelsPerPeer = 1024
	e := endpoint(t, cfg)
	baseStreams := e.Stats().OpenStreams
	before := heapInUse()

	const conns, perConn = 3, 1000
	peers := make([]*rawPeer, conns)
	for c := range peers {
		peers[c] = mustDialRaw(t, e.LocalAddr())
		for i := 0; i < perConn; i++ {
			// A header length of 40 and then nothing.
			peers[c].open([]byte{40})
		}
	}
	require.Eventually(t, func() bool { return e.Stats().OpenStreams >= baseStreams+conns*perConn },
		20*time.Second, 10*time.Millisecond, "the endpoint sees the streams")

	// The stream limit is enforced: the 1025th concurrent stream of one
	// connection must wait for credit.
	for i := perConn; i < cfg.MaxChannelsPerPeer; i++ {
		peers[0].open([]byte{40})
	}
	_, err := peers[0].conn.OpenStream()
	var limit *quic.StreamLimitReachedError
	require.ErrorAs(t, err, &limit, "more streams than MaxChannelsPerPeer")

	during := heapInUse()
	t.Logf("heap in use: %d KiB before, %d KiB with %d idle streams", before>>10, during>>10, e.Stats().OpenStreams)
	require.Less(t, during, before+256<<20, "memory stays bounded")

	goodPeerDelivers(t, e, 20)
	requireQuiet(t, e, 50*time.Millisecond)

	for _, p := range peers {
		p.conn.CloseWithError(0, "bye")
	}
	require.Eventually(t, func() bool { return e.Stats().OpenStreams <= baseStreams+1 },
		20*time.Second, 10*time.Millisecond, "stream readers are released when the connection goes")
}

// A stream that trickles one byte per second does not hold up anything
// else, and its message, once complete, arrives intact.
func TestSlowStream(t *testing.T) {
	t.Parallel()
	e := hostileEndpoint(t)
	p := mustDialRaw(t, e.LocalAddr())
	msg := []byte("slow")
	s := p.open(header(t, "slow"))
	done := make(chan error, 1)
	go func() {
		for _, b := range frame(msg) {
			time.Sleep(time.Second)
			if _, err := s.Write([]byte{b}); err != nil {
				done <- err
				return
			}
		}
		done <- s.Close()
	}()
	// While the slow stream dribbles, a well-behaved peer is served, and
	// the slow stream's partial message is not delivered.
	goodPeerDelivers(t, e, 20)
	require.NoError(t, <-done)
	got := recvN(t, e, 1, 10*time.Second)
	require.Equal(t, "slow", got[0].ch.Label)
	require.Equal(t, msg, got[0].msg)
	require.Equal(t, p.addr, got[0].ch.Addr)
	requireQuiet(t, e, 50*time.Millisecond)
	require.Equal(t, uint64(0), e.Stats().StreamsReset)
}

// Connections opened and never used: some never say HELLO (closed after
// the handshake timeout), more say HELLO than the map holds (evicted).
// The endpoint keeps serving, its map stays within MaxConnections, and
// memory stays bounded.
func TestUnusedConnections(t *testing.T) {
	t.Parallel()
	cfg := config(t, "target")
	cfg.MaxConnections = 8
	cfg.HandshakeTimeout = time.Second
	cfg.DrainTimeout = time.Second
	e := endpoint(t, cfg)
	before := heapInUse()

	var wg sync.WaitGroup
	var mu sync.Mutex
	var silent []*rawPeer
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := dialRaw(t, e.LocalAddr(), rawOptions{cert: issue(t, "silent"), noHello: true})
			if err != nil {
				t.Errorf("dial: %v", err)
				return
			}
			mu.Lock()
			silent = append(silent, p)
			mu.Unlock()
		}()
	}
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := dialRaw(t, e.LocalAddr(), rawOptions{cert: issue(t, "idle")}); err != nil {
				t.Errorf("dial: %v", err)
			}
		}()
	}
	wg.Wait()
	require.LessOrEqual(t, e.Stats().OpenConnections, uint64(cfg.MaxConnections))
	goodPeerDelivers(t, e, 10)

	// Connections that never said HELLO are closed by the endpoint.
	for _, p := range silent {
		select {
		case <-p.conn.Context().Done():
			var ae *quic.ApplicationError
			require.ErrorAs(t, context.Cause(p.conn.Context()), &ae)
			require.True(t, ae.Remote)
			require.Equal(t, quic.ApplicationErrorCode(wire.ConnCodeHelloTimeout), ae.ErrorCode)
		case <-time.After(10 * time.Second):
			t.Fatal("a connection that never said HELLO is still open")
		}
	}
	st := e.Stats()
	t.Logf("stats: %+v", st)
	require.LessOrEqual(t, st.OpenConnections, uint64(cfg.MaxConnections))
	require.GreaterOrEqual(t, st.Evictions, uint64(20+1-cfg.MaxConnections), "idle peers past the limit were evicted")
	require.Less(t, heapInUse(), before+64<<20, "memory stays bounded")
	requireQuiet(t, e, 50*time.Millisecond)
}

// A peer declares frames of MaxMessageSize on many streams and then sends
// nothing more. Memory must stay bounded by what was actually received
// (plus the queue limit), not by what was announced.
func TestDeclaredFrameLengthsDoNotReserveMemory(t *testing.T) {
	cfg := config(t, "target")
	cfg.MaxMessageSize = 16 << 20
	cfg.MaxQueueBytes = 16 << 20
	e := endpoint(t, cfg)
	p := mustDialRaw(t, e.LocalAddr())
	before := heapInUse()
	const streams = 24
	for i := 0; i < streams; i++ {
		b := append(header(t, fmt.Sprintf("decl%d", i)), quicvarint.Append(nil, cfg.MaxMessageSize)...)
		p.open(append(b, 'x'))
	}
	require.Eventually(t, func() bool { return e.Stats().OpenStreams >= streams }, 10*time.Second, 5*time.Millisecond)
	time.Sleep(200 * time.Millisecond) // let every reader reach the payload
	during := heapInUse()
	t.Logf("heap in use: %d MiB before, %d MiB with %d stalled %d MiB frames announced",
		before>>20, during>>20, streams, cfg.MaxMessageSize>>20)
	goodPeerDelivers(t, e, 5)
	require.Less(t, during, before+32<<20,
		"announcing frames must not reserve their length (heap grew by %d MiB)", (during-before)>>20)
}

// A stream whose channel header never arrives (nothing written, a header
// length alone, half a length, part of a header) is reset with
// HEADER_TIMEOUT once the endpoint's handshake timeout passes, and counted;
// the connection and its other streams are not affected.
func TestStreamWithoutHeaderIsResetAfterTimeout(t *testing.T) {
	cases := []struct {
		name  string
		bytes []byte
	}{
		// Opened but never written: the endpoint learns of the stream when
		// a later stream of the peer carries data.
		{"nothing written", nil},
		{"length only", []byte{0x05}},
		{"half a length", []byte{0x40}},
		{"part of the header", []byte{0x10, 0x82, 0xa1}},
	}
	e := hostileEndpoint(t)
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := mustDialRaw(t, e.LocalAddr())
			resets := e.Stats().StreamsReset
			s := p.open(tc.bytes)
			if len(tc.bytes) == 0 {
				label := fmt.Sprintf("beside%d", i)
				p.sendGood(label, 1, 50)
				got := recvN(t, e, 1, 10*time.Second)
				newOrderCheck().add(t, got[0], 50)
			}
			expectReset(t, s, wire.StreamCodeHeaderTimeout)
			onlyTheStreamWasReset(t, e, p, resets, fmt.Sprintf("afterhdr%d", i))
		})
	}
}

// onlyTheStreamWasReset checks what follows a reset stream: StreamsReset
// counted it once, the connection is alive, and a good stream on it (label)
// is delivered, in order, from the raw peer's address.
func onlyTheStreamWasReset(t *testing.T, e *core.Endpoint, p *rawPeer, resetsBefore uint64, label string) {
	t.Helper()
	require.Eventually(t, func() bool { return e.Stats().StreamsReset == resetsBefore+1 },
		5*time.Second, 5*time.Millisecond, "StreamsReset counts the reset")
	p.sendGood(label, 3, 50)
	check := newOrderCheck()
	for _, r := range recvN(t, e, 3, 10*time.Second) {
		require.Equal(t, p.addr, r.ch.Addr)
		check.add(t, r, 50)
	}
	require.Equal(t, 3, check.next[label])
	require.NoError(t, context.Cause(p.conn.Context()), "the connection was not closed")
}
