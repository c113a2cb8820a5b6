package wire_test

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/aranya-quic/aranya-quic/core/wire"
)

// Micro-benchmarks of the wire codec: the header is encoded once per
// channel stream (not per message), frames once per message. Run with
//
//	go test -run NONE -bench . -benchmem ./core/wire
//
// Absolute figures depend on the machine; compare them within one run.

func benchHeaders() []struct {
	name string
	m    *wire.QuicMessage
} {
	var tid [wire.TeamIDLen]byte
	for i := range tid {
		tid[i] = byte(i)
	}
	return []struct {
		name string
		m    *wire.QuicMessage
	}{
		{"channel-short", &wire.QuicMessage{Kind: wire.KindChannel, Channel: &wire.ChannelMessage{TeamID: tid, Label: "chat"}}},
		{"channel-255", &wire.QuicMessage{Kind: wire.KindChannel, Channel: &wire.ChannelMessage{TeamID: tid, Label: strings.Repeat("l", wire.MaxLabelLen)}}},
		{"sync", &wire.QuicMessage{Kind: wire.KindSync, Sync: &wire.SyncMessage{SyncType: 7}}},
	}
}

func BenchmarkAppendHeader(b *testing.B) {
	for _, h := range benchHeaders() {
		b.Run(h.name, func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]byte, 0, wire.MaxHeaderLen+8)
			for b.Loop() {
				var err error
				if buf, err = wire.AppendHeader(buf[:0], h.m); err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(int64(len(buf)))
		})
	}
}

func BenchmarkDecodeHeader(b *testing.B) {
	for _, h := range benchHeaders() {
		b.Run(h.name, func(b *testing.B) {
			enc, err := h.m.MarshalMsg(nil)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(enc)))
			for b.Loop() {
				if _, err := wire.DecodeHeader(enc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkReadHeader includes the varint length and the body copy, as a
// stream reader sees it; the bufio.Reader is reset, not reallocated.
func BenchmarkReadHeader(b *testing.B) {
	for _, h := range benchHeaders() {
		b.Run(h.name, func(b *testing.B) {
			enc, err := wire.AppendHeader(nil, h.m)
			if err != nil {
				b.Fatal(err)
			}
			src := bytes.NewReader(enc)
			r := bufio.NewReader(src)
			b.ReportAllocs()
			b.SetBytes(int64(len(enc)))
			for b.Loop() {
				src.Reset(enc)
				r.Reset(src)
				if _, err := wire.ReadHeader(r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

var frameSizes = []int{64, 1024, 64 << 10, 1 << 20}

func sizeName(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10:
		return fmt.Sprintf("%dKiB", n>>10)
	default:
		return fmt.Sprintf("%dB", n)
	}
}

func BenchmarkAppendFrameHeader(b *testing.B) {
	b.ReportAllocs()
	buf := make([]byte, 0, 8)
	for b.Loop() {
		buf = wire.AppendFrameHeader(buf[:0], 1<<20)
	}
	if len(buf) != wire.FrameHeaderLen(1<<20) {
		b.Fatal("wrong frame header length")
	}
}

// framed returns count frames of size bytes each.
func framed(size, count int) []byte {
	payload := bytes.Repeat([]byte{0xa5}, size)
	var out []byte
	for range count {
		out = wire.AppendFrameHeader(out, size)
		out = append(out, payload...)
	}
	return out
}

// loopReader replays data forever, so a benchmark reading frames from one
// bufio.Reader never hits the end of its input.
type loopReader struct {
	data []byte
	off  int
}

func (l *loopReader) Read(p []byte) (int, error) {
	n := copy(p, l.data[l.off:])
	l.off += n
	if l.off == len(l.data) {
		l.off = 0
	}
	return n, nil
}

// frameReader is a bufio.Reader over an endless run of frames of size bytes.
func frameReader(size int) *bufio.Reader {
	count := max(1, (256<<10)/(size+8))
	return bufio.NewReaderSize(&loopReader{data: framed(size, count)}, 64<<10)
}

// BenchmarkReadFrameLen reads one length prefix and discards the payload
// (the discard is part of the measured loop, but copies nothing).
func BenchmarkReadFrameLen(b *testing.B) {
	r := frameReader(64)
	b.ReportAllocs()
	for b.Loop() {
		n, err := wire.ReadFrameLen(r, 1<<24)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := r.Discard(int(n)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadFramePayload is the engine's small-frame path: length, then
// the payload into a buffer the caller owns (core's pooled buffer).
func BenchmarkReadFramePayload(b *testing.B) {
	for _, size := range frameSizes {
		b.Run(sizeName(size), func(b *testing.B) {
			r := frameReader(size)
			dst := make([]byte, size)
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				n, err := wire.ReadFrameLen(r, 1<<24)
				if err != nil {
					b.Fatal(err)
				}
				if err := wire.ReadFramePayload(r, dst[:n]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkReadPayload is the fallback path that allocates the payload as
// it arrives (used past the endpoint's reservation limit, and by
// ReadFrame): one allocation per frame up to 64 KiB, a growing series of
// them above.
func BenchmarkReadPayload(b *testing.B) {
	for _, size := range frameSizes {
		b.Run(sizeName(size), func(b *testing.B) {
			r := frameReader(size)
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				n, err := wire.ReadFrameLen(r, 1<<24)
				if err != nil {
					b.Fatal(err)
				}
				p, err := wire.ReadPayload(r, n)
				if err != nil {
					b.Fatal(err)
				}
				if len(p) != size {
					b.Fatalf("read %d bytes, want %d", len(p), size)
				}
			}
		})
	}
}
