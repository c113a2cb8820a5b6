package main

import (
	"net/netip"
	"testing"
	"unsafe"

	"github.com/aranya-quic/aranya-quic/core"
)

// Micro-benchmarks of the per-call work of the C API that does not touch
// the network: the handle lookup every export starts with, the address
// parse every send does, and the copy of a received message's origin into
// the caller's struct. Run with
//
//	go test -run NONE -bench . -benchmem ./capi
//
// Test files cannot use cgo, so they cannot name C types; the helpers below
// take the function under test as a value and let type inference supply
// its C parameter types (aranya_quic_t is a uint64, aq_cchar a char).
// The cost of the cgo call itself (C to Go, about 100 ns and more on a
// busy machine) is not included; bench/ measures the C API end to end.

// benchAcquire looks handle h up with acq and ends the call at once, as
// every export does around its work.
func benchAcquire[H ~uint64](b *testing.B, acq func(H) (*endpoint, error), h uint64, parallel bool) {
	b.ReportAllocs()
	if parallel {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				e, err := acq(H(h))
				if err != nil {
					b.Error(err)
					return
				}
				e.inflight.Done()
			}
		})
		return
	}
	for b.Loop() {
		e, err := acq(H(h))
		if err != nil {
			b.Fatal(err)
		}
		e.inflight.Done()
	}
}

// registerFake registers an endpoint with no engine: acquire only reads
// the map and counts the call in flight. It is unregistered at the end.
func registerFake(b *testing.B) uint64 {
	h := register(&endpoint{})
	b.Cleanup(func() { unregister(h) })
	return h
}

func BenchmarkAcquire(b *testing.B) {
	b.Run("serial", func(b *testing.B) {
		benchAcquire(b, acquire, registerFake(b), false)
	})
	b.Run("parallel", func(b *testing.B) {
		benchAcquire(b, acquire, registerFake(b), true)
	})
	// Lookups while many handles are live: one map lookup either way.
	b.Run("1000-handles", func(b *testing.B) {
		var h uint64
		for range 1000 {
			h = registerFake(b)
		}
		benchAcquire(b, acquire, h, false)
	})
}

// BenchmarkAcquireInvalid is the error path (handle 0, never issued or
// freed): it builds the error message, so it allocates; a caller only
// takes it by mistake.
func BenchmarkAcquireInvalid(b *testing.B) {
	benchAcquireInvalid(b, acquire)
}

func benchAcquireInvalid[H ~uint64](b *testing.B, acq func(H) (*endpoint, error)) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := acq(0); err == nil {
			b.Fatal("handle 0 was accepted")
		}
	}
}

// BenchmarkPeerAddr parses the NUL-terminated address every send passes.
func BenchmarkPeerAddr(b *testing.B) {
	for _, s := range []string{"127.0.0.1:4433", "[2001:db8::1]:4433"} {
		b.Run(s, func(b *testing.B) {
			benchPeerAddr(b, peerAddr, s)
		})
	}
}

func benchPeerAddr[T any](b *testing.B, parse func(*T) (core.Peer, error), s string) {
	cstr := append([]byte(s), 0)
	p := (*T)(unsafe.Pointer(&cstr[0]))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parse(p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFillChannel writes a received message's origin into the C
// struct, once per aranya_quic_receive that returns a message.
func BenchmarkFillChannel(b *testing.B) {
	ch := core.Channel{
		Addr:  netip.MustParseAddrPort("127.0.0.1:4433"),
		Kind:  core.KindChannel,
		Label: "bench",
	}
	benchFill(b, fillChannel, ch)
}

func benchFill[T any](b *testing.B, fill func(*T, *core.Channel), ch core.Channel) {
	out := new(T)
	b.ReportAllocs()
	for b.Loop() {
		fill(out, &ch)
	}
}
