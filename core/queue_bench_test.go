package core

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
)

// Micro-benchmarks of the receive path's in-memory hot spots: the receive
// queue and the payload pool. Run with
//
//	go test -run NONE -bench 'Queue|Payload' -benchmem ./core
//
// Absolute figures depend on the machine; compare them within one run.

func benchChannel() *inbound {
	return &inbound{ch: Channel{
		Addr:   netip.MustParseAddrPort("127.0.0.1:4433"),
		Kind:   KindChannel,
		TeamID: team(1),
		Label:  "bench",
	}}
}

// BenchmarkRecvQueuePushPop is the path with nobody waiting: the stream
// reader pushes and the application pops later (a busy receiver that
// finds messages queued). Payloads come from and go back to the pool, as
// in the engine. depth is how many messages are queued between the push
// and the pop of the same message.
func BenchmarkRecvQueuePushPop(b *testing.B) {
	for _, depth := range []int{1, 64} {
		for _, size := range []int{64, 1024} {
			b.Run(fmt.Sprintf("depth%d/%dB", depth, size), func(b *testing.B) {
				q := newRecvQueue(1<<30, 1<<20)
				ch := benchChannel()
				ctx := context.Background()
				dst := make([]byte, size)
				for range depth - 1 {
					if err := q.push(ctx, message{src: ch, payload: getPayload(uint64(size))}); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportAllocs()
				b.SetBytes(int64(size))
				for b.Loop() {
					if err := q.push(ctx, message{src: ch, payload: getPayload(uint64(size))}); err != nil {
						b.Fatal(err)
					}
					if _, _, err := q.pop(dst); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkRecvQueueWaitingReceiver is the path where the application is
// blocked in popWait (ReceiveContext, aranya_quic_receive_timeout) on an
// empty queue: every push has to wake it. One goroutine pushes, another
// receives; the allocations are per message, both sides together.
func BenchmarkRecvQueueWaitingReceiver(b *testing.B) {
	for _, size := range []int{64, 1024} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			q := newRecvQueue(1<<30, 1<<20)
			ch := benchChannel()
			ctx := context.Background()
			n := b.N
			done := make(chan error, 1)
			go func() {
				dst := make([]byte, size)
				for range n {
					if _, _, err := q.popWait(ctx, dst); err != nil {
						done <- err
						return
					}
				}
				done <- nil
			}()
			b.ReportAllocs()
			b.SetBytes(int64(size))
			b.ResetTimer()
			for range n {
				if err := q.push(ctx, message{src: ch, payload: getPayload(uint64(size))}); err != nil {
					b.Fatal(err)
				}
			}
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkRecvQueueFullSender is the backpressure path: the queue holds
// one message, so the pusher waits for every pop.
func BenchmarkRecvQueueFullSender(b *testing.B) {
	q := newRecvQueue(1<<30, 1)
	ch := benchChannel()
	ctx := context.Background()
	n := b.N
	done := make(chan error, 1)
	go func() {
		dst := make([]byte, 64)
		for range n {
			if _, _, err := q.popWait(ctx, dst); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	b.ReportAllocs()
	b.ResetTimer()
	for range n {
		if err := q.push(ctx, message{src: ch, payload: getPayload(64)}); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

// BenchmarkPayloadPool is one getPayload and putPayload round trip: what
// every received message costs in buffer management. Sizes above 64 KiB
// are pooled only when they are exact powers of two.
func BenchmarkPayloadPool(b *testing.B) {
	for _, size := range []uint64{64, 1000, 64 << 10, 1 << 20, 1<<20 + 1} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			putPayload(getPayload(size)) // warm the pool
			b.ReportAllocs()
			for b.Loop() {
				p := getPayload(size)
				if uint64(len(p)) != size {
					b.Fatalf("got %d bytes, want %d", len(p), size)
				}
				putPayload(p)
			}
		})
	}
}

// BenchmarkPayloadPoolParallel is BenchmarkPayloadPool from every P at once,
// as many stream readers and one receiver would use it.
func BenchmarkPayloadPoolParallel(b *testing.B) {
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			putPayload(getPayload(1024))
		}
	})
}
