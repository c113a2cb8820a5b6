package wire

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// readVarint reads a QUIC variable-length integer. Unlike quicvarint.Read
// it tells a stream that ended cleanly before the integer (io.EOF) from one
// cut inside it (ErrTruncated): the first is a finished stream, the second
// a protocol error.
func readVarint(r *bufio.Reader) (uint64, error) {
	first, err := r.ReadByte()
	if err != nil {
		return 0, err
	}
	n := 1 << (first >> 6)
	v := uint64(first & 0x3f)
	for i := 1; i < n; i++ {
		b, err := r.ReadByte()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return 0, fmt.Errorf("%w: stream ended inside a length", ErrTruncated)
			}
			return 0, err
		}
		v = v<<8 | uint64(b)
	}
	return v, nil
}
