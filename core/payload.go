package core

import (
	"bufio"
	"math/bits"
	"sync"
	"unsafe"

	"github.com/aranya-quic/aranya-quic/core/wire"
)

// Received payloads come from pools of power-of-two sizes and go back when
// Receive has copied them out: at high message rates allocating each one
// costs more than the rest of the receive path.
const (
	minPooledShift = 6  // 64 B
	maxPooledShift = 24 // 16 MiB
	roundUpShift   = 16 // sizes up to 64 KiB are rounded up to their class
)

var payloadPools [maxPooledShift + 1]sync.Pool

func poolShift(n uint64) int {
	if n <= 1<<minPooledShift {
		return minPooledShift
	}
	return bits.Len64(n - 1)
}

// getPayload returns a buffer of length n, pooled when n is small enough.
func getPayload(n uint64) []byte {
	shift := poolShift(n)
	if shift > maxPooledShift || (shift > roundUpShift && n != 1<<shift) {
		// Rounding a large buffer up could double what the queue holds
		// beyond its byte limit; only exact powers of two are pooled.
		return make([]byte, n)
	}
	if v := payloadPools[shift].Get(); v != nil {
		return unsafe.Slice(v.(*byte), 1<<shift)[:n]
	}
	return make([]byte, n, 1<<shift)
}

// putPayload recycles a buffer that getPayload made.
func putPayload(p []byte) {
	c := uint64(cap(p))
	if c < 1<<minPooledShift || c&(c-1) != 0 {
		return
	}
	shift := bits.Len64(c) - 1
	if shift > maxPooledShift {
		return
	}
	// The pool holds a pointer to the array's first byte, which keeps the
	// whole array alive; a *[]byte would cost an allocation per Put.
	payloadPools[shift].Put(unsafe.SliceData(p[:1]))
}

// readPayload reads a frame's payload of n bytes. A large frame is given
// its whole buffer up front only while the endpoint's reservations for
// frames in progress stay within the queue limit; past that (many streams
// announcing large frames at once, as a hostile peer would) the buffer
// grows as the bytes arrive, so memory follows what was received, not
// what was announced.
func (e *Endpoint) readPayload(r *bufio.Reader, n uint64) ([]byte, error) {
	const small = 64 << 10
	if n <= small {
		p := getPayload(n)
		if err := wire.ReadFramePayload(r, p); err != nil {
			putPayload(p)
			return nil, err
		}
		return p, nil
	}
	if e.reserved.Add(n) <= e.cfg.MaxQueueBytes {
		defer e.reserved.Add(^(n - 1))
		p := getPayload(n)
		if err := wire.ReadFramePayload(r, p); err != nil {
			putPayload(p)
			return nil, err
		}
		return p, nil
	}
	e.reserved.Add(^(n - 1))
	return wire.ReadPayload(r, n)
}
