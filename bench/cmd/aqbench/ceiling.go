package main

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/net/ipv4"
)

// Ceilings: what this machine can do at all, measured in the same run as
// the QUIC figures, so a QUIC figure can be read as a fraction of what the
// hardware and kernel allow. Neither does any QUIC work.

// printImplResult is printResult with an explicit impl name, for lines
// that are no one's implementation.
func printImplResult(scenario, impl string, m map[string]float64) error {
	return json.NewEncoder(os.Stdout).Encode(result{Scenario: scenario, Impl: impl, Metrics: m})
}

// aesPacket is the plaintext of one packet-sized seal: a QUIC packet of
// about 1200 bytes of payload.
const aesPacket = 1200

// runCeilingAES seals packet-sized plaintexts with AES-128-GCM on one
// goroutine locked to one OS thread (so one core) for dur: the most
// payload one core can encrypt, with nothing else done per packet (no
// header protection, no additional data, no copies).
func runCeilingAES(dur time.Duration) (map[string]float64, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	key := []byte("aqbench-ceiling!")
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("aes: %w", err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("gcm: %w", err)
	}
	plain := make([]byte, aesPacket)
	nonce := make([]byte, gcm.NonceSize())
	out := make([]byte, 0, aesPacket+gcm.Overhead())
	var n uint64
	start := time.Now()
	for time.Since(start) < dur {
		for i := 0; i < 256; i++ {
			// A fresh nonce per packet, like QUIC's packet number
			// folded into the IV.
			binary.BigEndian.PutUint64(nonce[4:], n)
			n++
			out = gcm.Seal(out[:0], nonce, plain, nil)
		}
	}
	s := time.Since(start).Seconds()
	if len(out) != aesPacket+16 {
		return nil, fmt.Errorf("sealed %d bytes, want %d", len(out), aesPacket+16)
	}
	return map[string]float64{
		"gbit_s":        float64(n) * aesPacket * 8 / s / 1e9,
		"packets_per_s": float64(n) / s,
		"packets":       float64(n),
		"seconds":       s,
	}, nil
}

// defaultDatagram is the datagram payload of ceiling-udp. quic-go starts
// at 1280-byte packets (UDP payload) and its path MTU discovery raises
// that towards 1452 on loopback; quic-msg and quic-par report the mean they
// actually sent as avg_packet_bytes.
const defaultDatagram = 1452

// udpBuffer is the socket buffer asked for on both sockets (the kernel
// caps it at net.core.rmem_max / wmem_max and doubles it for overhead).
const udpBuffer = 4 << 20

// runCeilingUDP sends size-byte datagrams over loopback from one socket
// to another with sendmmsg (batch datagrams a call) and receives them with
// recvmmsg for dur: the datagram rate the kernel sustains with batching
// and no QUIC work. The sender keeps at most a receive buffer's worth of
// datagrams unread (the receiver reports progress in-process), so the
// figure is what the receiver takes in, not what the kernel drops.
func runCeilingUDP(mode string, size, batch int, dur time.Duration) (map[string]float64, error) {
	if size < 1 || size > 65507 {
		return nil, fmt.Errorf("-dgram %d out of range", size)
	}
	if batch < 1 || batch > 1024 {
		return nil, fmt.Errorf("-batch %d out of range", batch)
	}
	if mode == "gso" {
		// The kernel takes at most 64 segments and one IP packet's
		// worth of bytes per GSO send.
		batch = min(batch, 64, 65507/size)
	}
	lo := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}
	rc, err := net.ListenUDP("udp4", lo)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	sc, err := net.ListenUDP("udp4", lo)
	if err != nil {
		return nil, err
	}
	defer sc.Close()
	if err := rc.SetReadBuffer(udpBuffer); err != nil {
		return nil, fmt.Errorf("receive buffer: %w", err)
	}
	if err := sc.SetWriteBuffer(udpBuffer); err != nil {
		return nil, fmt.Errorf("send buffer: %w", err)
	}
	rcvbuf, err := sockBuffer(rc, syscall.SO_RCVBUF)
	if err != nil {
		return nil, err
	}
	// The receive buffer is charged per datagram with the kernel's
	// buffer size, not the payload: assume 4 KiB each so the window fits.
	window := int64(max(rcvbuf/4096, 2*batch))

	var (
		recvd     atomic.Int64
		recvBytes atomic.Int64
		progress  = make(chan struct{}, 1)
		lastRecv  time.Time
		recvErr   = make(chan error, 1)
		sendDone  atomic.Bool
		sentTotal atomic.Int64
	)
	rp := ipv4.NewPacketConn(rc)
	cpu := startCPU()
	start := time.Now()
	go func() {
		ms := make([]ipv4.Message, batch)
		for i := range ms {
			ms[i].Buffers = [][]byte{make([]byte, size+1)}
		}
		for {
			n, err := rp.ReadBatch(ms, 0)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					err = nil // the sender is done and nothing more came
				}
				cpu.stop()
				recvErr <- err
				return
			}
			var b int64
			for _, m := range ms[:n] {
				b += int64(m.N)
			}
			lastRecv = time.Now()
			got := recvd.Add(int64(n))
			recvBytes.Add(b)
			select {
			case progress <- struct{}{}:
			default:
			}
			if sendDone.Load() && got >= sentTotal.Load() {
				cpu.stop()
				recvErr <- nil
				return
			}
		}
	}()

	send, err := udpSender(sc, rc.LocalAddr().(*net.UDPAddr), mode, size, batch)
	if err != nil {
		return nil, err
	}
	var sent, presumedLost, waits int64
	deadline := start.Add(dur)
	stall := time.NewTimer(time.Hour)
	stall.Stop()
	for time.Now().Before(deadline) {
		for sent-presumedLost-recvd.Load()+int64(batch) > window {
			waits++
			stall.Reset(5 * time.Millisecond)
			select {
			case <-progress:
			case <-stall.C:
				// Nothing read for 5 ms on loopback: what is
				// outstanding was dropped; stop waiting for it.
				presumedLost = sent - recvd.Load()
			}
			stall.Stop()
		}
		n, err := send()
		sent += int64(n)
		if err != nil {
			return nil, err
		}
	}
	sendEnd := time.Now()
	sentTotal.Store(sent)
	sendDone.Store(true)
	// The deadline ends the receiver's wait: at once if it already has
	// everything (it may be parked in recvmmsg), else after a grace for
	// datagrams still queued (whatever is missing then was dropped).
	grace := 100 * time.Millisecond
	if recvd.Load() >= sent {
		grace = 0
	}
	if err := rc.SetReadDeadline(time.Now().Add(grace)); err != nil {
		return nil, err
	}
	if err := <-recvErr; err != nil {
		return nil, fmt.Errorf("recvmmsg: %w", err)
	}
	got := recvd.Load()
	rs := lastRecv.Sub(start).Seconds()
	m := map[string]float64{
		"datagrams_per_s":     float64(got) / rs,
		"gbit_s":              float64(recvBytes.Load()) * 8 / rs / 1e9,
		"sent_per_s":          float64(sent) / sendEnd.Sub(start).Seconds(),
		"loss_fraction":       1 - float64(got)/float64(sent),
		"datagrams":           float64(got),
		"datagram_bytes":      float64(size),
		"batch":               float64(batch),
		"rcvbuf_bytes":        float64(rcvbuf),
		"seconds":             rs,
		"cpu_ns_per_datagram": cpu.perMsg(got),
		"window_waits":        float64(waits),
		"gso":                 b2f(mode == "gso"),
	}
	return m, nil
}

// sockBuffer reads a socket buffer size back (Linux reports the doubled
// figure it really uses).
func sockBuffer(c *net.UDPConn, opt int) (int, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var v int
	var serr error
	if err := raw.Control(func(fd uintptr) {
		v, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, opt)
	}); err != nil {
		return 0, err
	}
	if serr != nil {
		return 0, fmt.Errorf("getsockopt: %w", serr)
	}
	return v, nil
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// udpSender returns a function that sends one batch of size-byte
// datagrams to dst the -send way and reports how many went out:
//
//   - gso: one sendmsg carrying batch datagrams as one buffer with a
//     UDP_SEGMENT control message; the kernel splits it (what quic-go
//     does on Linux when the kernel supports it)
//   - mmsg: one sendmmsg carrying batch separate datagrams
func udpSender(c *net.UDPConn, dst *net.UDPAddr, mode string, size, batch int) (func() (int, error), error) {
	switch mode {
	case "gso":
		buf := make([]byte, size*batch)
		oob := make([]byte, syscall.CmsgSpace(2))
		h := (*syscall.Cmsghdr)(unsafe.Pointer(&oob[0]))
		h.Level = syscall.IPPROTO_UDP
		h.Type = udpSegment
		h.SetLen(syscall.CmsgLen(2))
		binary.NativeEndian.PutUint16(oob[syscall.CmsgLen(0):], uint16(size))
		return func() (int, error) {
			if _, _, err := c.WriteMsgUDP(buf, oob, dst); err != nil {
				return 0, fmt.Errorf("sendmsg with UDP_SEGMENT (try -send=mmsg): %w", err)
			}
			return batch, nil
		}, nil
	case "mmsg":
		p := ipv4.NewPacketConn(c)
		ms := make([]ipv4.Message, batch)
		payload := make([]byte, size)
		for i := range ms {
			ms[i].Buffers = [][]byte{payload}
			ms[i].Addr = dst
		}
		return func() (int, error) {
			sent := 0
			for sent < batch {
				n, err := p.WriteBatch(ms[sent:], 0)
				sent += n
				if err != nil {
					return sent, fmt.Errorf("sendmmsg: %w", err)
				}
			}
			return sent, nil
		}, nil
	default:
		return nil, fmt.Errorf("unknown -send %q (want gso or mmsg)", mode)
	}
}

// udpSegment is Linux's UDP_SEGMENT socket option (linux/udp.h), which
// the syscall package does not name.
const udpSegment = 103
