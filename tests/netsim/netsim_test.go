package netsim

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type sock struct {
	t    *testing.T
	conn *net.UDPConn
	addr netip.AddrPort
}

func newSock(t *testing.T) *sock {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return &sock{t: t, conn: c, addr: c.LocalAddr().(*net.UDPAddr).AddrPort()}
}

func (s *sock) send(to netip.AddrPort, b []byte) {
	s.t.Helper()
	_, err := s.conn.WriteToUDPAddrPort(b, to)
	require.NoError(s.t, err)
}

func (s *sock) sendSeq(to netip.AddrPort, i int, size int) {
	b := make([]byte, max(size, 4))
	binary.BigEndian.PutUint32(b, uint32(i))
	s.send(to, b)
}

// recv reads one datagram or returns ok=false when none arrives within d.
func (s *sock) recv(d time.Duration) (data []byte, from netip.AddrPort, ok bool) {
	s.t.Helper()
	require.NoError(s.t, s.conn.SetReadDeadline(time.Now().Add(d)))
	buf := make([]byte, 65536)
	n, from, err := s.conn.ReadFromUDPAddrPort(buf)
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, netip.AddrPort{}, false
		}
		require.NoError(s.t, err)
	}
	return buf[:n], from, true
}

// recvAll reads datagrams until none arrives for quiet.
func (s *sock) recvAll(quiet time.Duration) []int {
	var out []int
	for {
		b, _, ok := s.recv(quiet)
		if !ok {
			return out
		}
		out = append(out, int(binary.BigEndian.Uint32(b)))
	}
}

func newProxy(t *testing.T, seed uint64, l Link) *Proxy {
	p := New(seed, l)
	t.Cleanup(func() { p.Close() })
	return p
}

// waitReceived waits until the proxy has read n datagrams.
func waitReceived(t *testing.T, p *Proxy, n uint64) {
	t.Helper()
	require.Eventually(t, func() bool { return p.Stats().Received >= n }, 5*time.Second, time.Millisecond)
}

func TestSymmetricAddresses(t *testing.T) {
	p := newProxy(t, 1, Link{})
	a, b := newSock(t), newSock(t)
	pa, pb := p.MustAdd(a.addr), p.MustAdd(b.addr)
	require.NotEqual(t, pa, pb)
	again, err := p.Add(a.addr)
	require.NoError(t, err)
	require.Equal(t, pa, again, "adding an address twice keeps its port")

	a.send(pb, []byte("ping"))
	data, from, ok := b.recv(2 * time.Second)
	require.True(t, ok)
	require.Equal(t, "ping", string(data))
	require.Equal(t, pa, from, "B sees A by A's proxy address")

	b.send(from, []byte("pong"))
	data, from, ok = a.recv(2 * time.Second)
	require.True(t, ok)
	require.Equal(t, "pong", string(data))
	require.Equal(t, pb, from, "A sees B by B's proxy address")
}

func TestUnknownSourceDropped(t *testing.T) {
	p := newProxy(t, 1, Link{})
	a, stranger := newSock(t), newSock(t)
	pa := p.MustAdd(a.addr)
	stranger.send(pa, []byte("hi"))
	waitReceived(t, p, 1)
	_, _, ok := a.recv(100 * time.Millisecond)
	require.False(t, ok)
	require.Equal(t, uint64(1), p.Stats().Unknown)
}

func TestLossIsSeededAndCounted(t *testing.T) {
	run := func() []int {
		p := newProxy(t, 42, Link{Loss: 0.3})
		a, b := newSock(t), newSock(t)
		p.MustAdd(a.addr)
		pb := p.MustAdd(b.addr)
		const n = 300
		for i := 0; i < n; i++ {
			a.sendSeq(pb, i, 8)
			// One datagram in flight at a time keeps the random draws in
			// send order, so the run is reproducible.
			waitReceived(t, p, uint64(i+1))
		}
		got := b.recvAll(200 * time.Millisecond)
		st := p.Stats()
		require.Equal(t, uint64(n), st.Received)
		require.Equal(t, uint64(len(got)), st.Delivered)
		require.Equal(t, st.Received, st.Delivered+st.Lost)
		require.Greater(t, st.Lost, uint64(n/10), "30%% loss drops some")
		require.Less(t, st.Lost, uint64(n/2))
		return got
	}
	first, second := run(), run()
	require.Equal(t, first, second, "the same seed drops the same datagrams")
}

func TestDuplicate(t *testing.T) {
	p := newProxy(t, 7, Link{Duplicate: 1})
	a, b := newSock(t), newSock(t)
	p.MustAdd(a.addr)
	pb := p.MustAdd(b.addr)
	for i := 0; i < 20; i++ {
		a.sendSeq(pb, i, 8)
	}
	got := b.recvAll(200 * time.Millisecond)
	require.Len(t, got, 40)
	count := map[int]int{}
	for _, i := range got {
		count[i]++
	}
	for i := 0; i < 20; i++ {
		require.Equal(t, 2, count[i])
	}
	require.Equal(t, uint64(20), p.Stats().Duplicated)
}

func TestDelayJitterReorder(t *testing.T) {
	p := newProxy(t, 9, Link{Delay: 5 * time.Millisecond, Jitter: 20 * time.Millisecond, Reorder: 0.2})
	a, b := newSock(t), newSock(t)
	p.MustAdd(a.addr)
	pb := p.MustAdd(b.addr)
	const n = 200
	for i := 0; i < n; i++ {
		a.sendSeq(pb, i, 8)
	}
	got := b.recvAll(300 * time.Millisecond)
	require.Len(t, got, n, "delay and reordering lose nothing")
	inversions := 0
	seen := map[int]bool{}
	for k, i := range got {
		require.False(t, seen[i], "duplicate %d", i)
		seen[i] = true
		if k > 0 && got[k-1] > i {
			inversions++
		}
	}
	require.Greater(t, inversions, 0, "jitter reorders datagrams")
	require.Greater(t, p.Stats().Reordered, uint64(0))
}

func TestBandwidthQueueTailDrop(t *testing.T) {
	// 10 KB/s with a 4 KiB queue: a burst of 40 datagrams of 1000 bytes
	// cannot all fit; the ones that fit arrive in order.
	p := newProxy(t, 3, Link{Bandwidth: 10000, QueueBytes: 4096})
	a, b := newSock(t), newSock(t)
	p.MustAdd(a.addr)
	pb := p.MustAdd(b.addr)
	const n = 40
	for i := 0; i < n; i++ {
		a.sendSeq(pb, i, 1000)
	}
	waitReceived(t, p, n)
	got := b.recvAll(500 * time.Millisecond)
	st := p.Stats()
	require.Greater(t, st.QueueDropped, uint64(0), "a full queue drops")
	require.Equal(t, uint64(n), st.Delivered+st.QueueDropped)
	require.Len(t, got, int(st.Delivered))
	require.Less(t, len(got), n)
	for k := 1; k < len(got); k++ {
		require.Less(t, got[k-1], got[k], "a FIFO link keeps order")
	}
}

func TestSharedBottleneck(t *testing.T) {
	// Two senders, 4 datagrams of 1000 bytes each, toward one receiver
	// through 10 KB/s with a 4 KiB queue. Per pair (the default) each
	// sender has its own queue and all 8 fit; with SharedBottleneck both
	// share one queue, so only 4 fit and they leave one after another.
	for _, shared := range []bool{false, true} {
		p := newProxy(t, 4, Link{Bandwidth: 10000, QueueBytes: 4096, SharedBottleneck: shared})
		a, c, b := newSock(t), newSock(t), newSock(t)
		p.MustAdd(a.addr)
		p.MustAdd(c.addr)
		pb := p.MustAdd(b.addr)
		start := time.Now()
		for i := 0; i < 4; i++ {
			a.sendSeq(pb, i, 1000)
			c.sendSeq(pb, 100+i, 1000)
		}
		waitReceived(t, p, 8)
		var got []int
		var last time.Time
		for {
			d, _, ok := b.recv(600 * time.Millisecond)
			if !ok {
				break
			}
			got = append(got, int(binary.BigEndian.Uint32(d)))
			last = time.Now()
		}
		st := p.Stats()
		if !shared {
			require.Len(t, got, 8, "per-pair queues: nothing dropped")
			require.Zero(t, st.QueueDropped)
			continue
		}
		require.Len(t, got, 4, "one shared 4 KiB queue")
		require.Equal(t, uint64(4), st.QueueDropped)
		// 4 x 1000 bytes at 10 KB/s through one link take 400 ms.
		require.GreaterOrEqual(t, last.Sub(start), 390*time.Millisecond)
	}
}

func TestPartitionAndHeal(t *testing.T) {
	p := newProxy(t, 5, Link{})
	a, b := newSock(t), newSock(t)
	pa := p.MustAdd(a.addr)
	pb := p.MustAdd(b.addr)

	p.Partition()
	a.sendSeq(pb, 1, 8)
	b.sendSeq(pa, 2, 8)
	waitReceived(t, p, 2)
	_, _, ok := b.recv(100 * time.Millisecond)
	require.False(t, ok, "partitioned")
	_, _, ok = a.recv(10 * time.Millisecond)
	require.False(t, ok, "partitioned")
	require.Equal(t, uint64(2), p.Stats().Partitioned)

	p.Heal()
	a.sendSeq(pb, 3, 8)
	data, _, ok := b.recv(2 * time.Second)
	require.True(t, ok)
	require.Equal(t, uint32(3), binary.BigEndian.Uint32(data))

	p.PartitionFor(200 * time.Millisecond)
	a.sendSeq(pb, 4, 8)
	waitReceived(t, p, 4)
	require.Equal(t, uint64(3), p.Stats().Partitioned)
	require.Eventually(t, func() bool {
		a.sendSeq(pb, 5, 8)
		data, _, ok := b.recv(50 * time.Millisecond)
		return ok && binary.BigEndian.Uint32(data) == 5
	}, 5*time.Second, 10*time.Millisecond, "PartitionFor heals by itself")
}

func TestIsolateAndCut(t *testing.T) {
	p := newProxy(t, 6, Link{})
	a, b, c := newSock(t), newSock(t), newSock(t)
	p.MustAdd(a.addr)
	pb := p.MustAdd(b.addr)
	pc := p.MustAdd(c.addr)

	p.Cut(a.addr, b.addr)
	a.sendSeq(pb, 1, 8)
	a.sendSeq(pc, 2, 8)
	data, _, ok := c.recv(2 * time.Second)
	require.True(t, ok, "a cut between a and b leaves a-c alone")
	require.Equal(t, uint32(2), binary.BigEndian.Uint32(data))
	_, _, ok = b.recv(100 * time.Millisecond)
	require.False(t, ok)

	p.Heal()
	p.Isolate(c.addr)
	a.sendSeq(pc, 3, 8)
	a.sendSeq(pb, 4, 8)
	data, _, ok = b.recv(2 * time.Second)
	require.True(t, ok)
	require.Equal(t, uint32(4), binary.BigEndian.Uint32(data))
	_, _, ok = c.recv(100 * time.Millisecond)
	require.False(t, ok, "isolated")
}

func TestCloseStopsForwarding(t *testing.T) {
	p := New(1, Link{Delay: time.Hour})
	a, b := newSock(t), newSock(t)
	p.MustAdd(a.addr)
	pb := p.MustAdd(b.addr)
	a.sendSeq(pb, 1, 8)
	waitReceived(t, p, 1)
	require.NoError(t, p.Close())
	require.NoError(t, p.Close(), "Close twice is harmless")
	_, err := p.Add(netip.MustParseAddrPort("127.0.0.1:9"))
	require.ErrorIs(t, err, ErrClosed)
}
