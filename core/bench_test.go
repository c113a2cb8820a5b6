package core

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkSendReceive measures one channel end to end in one process:
// b.N messages sent by one goroutine and received by another.
func BenchmarkSendReceive(b *testing.B) {
	for _, size := range []int{64, 1024, 64 << 10} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			a := newTestEndpoint(b, "alice")
			r := newTestEndpoint(b, "bob")
			msg := make([]byte, size)
			ctx := context.Background()
			done := make(chan error, 1)
			b.SetBytes(int64(size))
			b.ResetTimer()
			go func() {
				buf := make([]byte, size)
				rctx, cancel := context.WithTimeout(ctx, time.Minute)
				defer cancel()
				for i := 0; i < b.N; i++ {
					if _, _, err := r.ReceiveContext(rctx, buf); err != nil {
						done <- err
						return
					}
				}
				done <- nil
			}()
			for i := 0; i < b.N; i++ {
				if err := a.Send(ctx, r.LocalAddr(), team(1), "bench", msg); err != nil {
					b.Fatal(err)
				}
			}
			if err := <-done; err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
		})
	}
}
