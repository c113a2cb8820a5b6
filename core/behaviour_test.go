package core

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// checkInOrder asserts that for every label the messages arrived exactly
// once and in send order; payloads are "label/seq".
func checkInOrder(t *testing.T, got []received, labels []string, perLabel int) {
	t.Helper()
	next := map[string]int{}
	for _, r := range got {
		var label string
		var seq int
		_, err := fmt.Sscanf(string(r.msg), "%s %d", &label, &seq)
		require.NoError(t, err, "payload %q", r.msg)
		require.Equal(t, r.ch.Label, label, "message arrived on the wrong channel")
		require.Equal(t, next[label], seq, "channel %s out of order or duplicated", label)
		next[label]++
	}
	for _, l := range labels {
		require.Equal(t, perLabel, next[l], "channel %s incomplete", l)
	}
}

func TestPerChannelOrderAcrossManyChannels(t *testing.T) {
	a := newTestEndpoint(t, "alice")
	b := newTestEndpoint(t, "bob")
	const channels, perChannel = 16, 500
	labels := make([]string, channels)
	var wg sync.WaitGroup
	for i := range labels {
		labels[i] = fmt.Sprintf("ch%02d", i)
		wg.Add(1)
		go func(label string) {
			defer wg.Done()
			ctx := sendCtx(t)
			for s := 0; s < perChannel; s++ {
				if err := a.Send(ctx, b.LocalAddr(), team(2), label, []byte(fmt.Sprintf("%s %d", label, s))); err != nil {
					t.Errorf("send %s %d: %v", label, s, err)
					return
				}
			}
		}(labels[i])
	}
	got := recvN(t, b, channels*perChannel, 20*time.Second)
	wg.Wait()
	checkInOrder(t, got, labels, perChannel)
	st := b.Stats()
	require.Equal(t, uint64(channels*perChannel), st.MessagesReceived)
	require.Equal(t, uint64(1), a.Stats().Dials, "all channels share one connection")
}

func TestConcurrentSendersOnOneChannelNeverInterleave(t *testing.T) {
	a := newTestEndpoint(t, "alice")
	b := newTestEndpoint(t, "bob")
	const senders, each = 8, 200
	var wg sync.WaitGroup
	for g := 0; g < senders; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := sendCtx(t)
			for i := 0; i < each; i++ {
				// Distinct sizes so an interleaving would corrupt frames.
				msg := make([]byte, 100+g*37+i%50)
				for j := range msg {
					msg[j] = byte(g)
				}
				if err := a.Send(ctx, b.LocalAddr(), team(3), "shared", msg); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	got := recvN(t, b, senders*each, 20*time.Second)
	wg.Wait()
	counts := map[byte]int{}
	for _, r := range got {
		require.NotEmpty(t, r.msg)
		for _, c := range r.msg {
			require.Equal(t, r.msg[0], c, "a message holds bytes of two senders")
		}
		counts[r.msg[0]]++
	}
	for g := 0; g < senders; g++ {
		require.Equal(t, each, counts[byte(g)])
	}
}

func TestSeveralPeersConcurrently(t *testing.T) {
	hub := newTestEndpoint(t, "hub")
	const peers, each = 6, 300
	var wg sync.WaitGroup
	senders := make([]*Endpoint, peers)
	for i := range senders {
		senders[i] = newTestEndpoint(t, fmt.Sprintf("peer%d", i))
	}
	for i, s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := sendCtx(t)
			label := fmt.Sprintf("p%d", i)
			for k := 0; k < each; k++ {
				if err := s.Send(ctx, hub.LocalAddr(), team(4), label, []byte(fmt.Sprintf("%s %d", label, k))); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	got := recvN(t, hub, peers*each, 20*time.Second)
	wg.Wait()
	labels := make([]string, peers)
	for i := range labels {
		labels[i] = fmt.Sprintf("p%d", i)
	}
	checkInOrder(t, got, labels, each)
	// The address a message carries is the sender's listening address.
	for _, r := range got {
		var i int
		fmt.Sscanf(r.ch.Label, "p%d", &i)
		require.Equal(t, senders[i].LocalAddr(), r.ch.Addr)
	}
	require.Equal(t, uint64(peers), hub.Stats().Accepts)
}

func TestReplyReusesTheConnection(t *testing.T) {
	a := newTestEndpoint(t, "alice")
	b := newTestEndpoint(t, "bob")
	ctx := sendCtx(t)
	require.NoError(t, a.Send(ctx, b.LocalAddr(), team(5), "rpc", []byte("ping")))
	got := recvN(t, b, 1, 5*time.Second)
	require.NoError(t, b.Send(ctx, got[0].ch.Addr, team(5), "rpc", []byte("pong")))
	back := recvN(t, a, 1, 5*time.Second)
	require.Equal(t, "pong", string(back[0].msg))
	require.Equal(t, b.LocalAddr(), back[0].ch.Addr)

	as, bs := a.Stats(), b.Stats()
	require.Equal(t, uint64(1), as.Dials)
	require.Equal(t, uint64(0), bs.Dials, "the reply must not dial")
	require.Equal(t, uint64(1), as.OpenConnections)
	require.Equal(t, uint64(1), bs.OpenConnections)
}

func TestBufferTooSmallKeepsMessage(t *testing.T) {
	a := newTestEndpoint(t, "alice")
	b := newTestEndpoint(t, "bob")
	payload := []byte("a message of thirty-two bytes!!!")
	require.NoError(t, a.Send(sendCtx(t), b.LocalAddr(), team(6), "x", payload))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	small := make([]byte, 5)
	_, n, err := b.ReceiveContext(ctx, small)
	require.ErrorIs(t, err, ErrBufferTooSmall)
	require.Equal(t, len(payload), n, "reports the needed size")
	_, n, err = b.Receive(small)
	require.ErrorIs(t, err, ErrBufferTooSmall, "message still queued")
	require.Equal(t, len(payload), n)

	buf := make([]byte, n)
	ch, n, err := b.Receive(buf)
	require.NoError(t, err)
	require.Equal(t, payload, buf[:n])
	require.Equal(t, "x", ch.Label)
	_, _, err = b.Receive(buf)
	require.ErrorIs(t, err, ErrWouldBlock)
}

func TestQueueNotify(t *testing.T) {
	a := newTestEndpoint(t, "alice")
	b := newTestEndpoint(t, "bob")
	states := make(chan bool, 16)
	b.SetQueueNotify(func(nonEmpty bool) { states <- nonEmpty })
	require.False(t, <-states, "registration reports the current (empty) state")
	require.NoError(t, a.Send(sendCtx(t), b.LocalAddr(), team(1), "n", []byte("x")))
	select {
	case s := <-states:
		require.True(t, s)
	case <-time.After(5 * time.Second):
		t.Fatal("no notification")
	}
	buf := make([]byte, 16)
	_, _, err := b.Receive(buf)
	require.NoError(t, err)
	require.False(t, <-states)
	b.SetQueueNotify(nil)
}

func TestQueueFullAppliesBackpressureWithoutLoss(t *testing.T) {
	a := newTestEndpoint(t, "alice")
	cfg := peerConfig(t, "bob")
	cfg.MaxMessageSize = 64 << 10
	cfg.MaxQueueBytes = 256 << 10
	cfg.MaxQueueMessages = 8
	b := newEndpoint(t, cfg)

	const total = 400 // 25 MiB: far more than windows and buffers hold
	msg := make([]byte, 64<<10)
	sent := make(chan int, 1)
	go func() {
		n := 0
		defer func() { sent <- n }()
		for i := 0; i < total; i++ {
			msg[0], msg[1] = byte(i), byte(i>>8)
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			err := a.Send(ctx, b.LocalAddr(), team(7), "bulk", msg)
			cancel()
			if errors.Is(err, ErrTimeout) {
				return // backpressure reached the sender
			}
			if err != nil {
				t.Error(err)
				return
			}
			n++
		}
	}()
	accepted := <-sent
	require.Less(t, accepted, total, "the sender never felt backpressure")
	qm, qb := b.queue.depth()
	require.LessOrEqual(t, qm, uint64(cfg.MaxQueueMessages))
	require.LessOrEqual(t, qb, cfg.MaxQueueBytes)

	got := recvN(t, b, accepted, 20*time.Second)
	for i, r := range got {
		require.Equal(t, byte(i), r.msg[0])
		require.Equal(t, byte(i>>8), r.msg[1])
	}
	time.Sleep(200 * time.Millisecond)
	_, _, err := b.Receive(make([]byte, 64<<10))
	require.ErrorIs(t, err, ErrWouldBlock, "a timed-out send must not be delivered")
}

func TestBadInput(t *testing.T) {
	a := newTestEndpoint(t, "alice")
	ctx := sendCtx(t)
	peer := netip.MustParseAddrPort("127.0.0.1:9")

	long := make([]byte, 256)
	for i := range long {
		long[i] = 'a'
	}
	require.ErrorIs(t, a.Send(ctx, peer, team(1), string(long), []byte("x")), ErrInvalidLabel)
	require.ErrorIs(t, a.Send(ctx, peer, team(1), "\xff\xfe", []byte("x")), ErrInvalidLabel)
	require.ErrorIs(t, a.Send(ctx, netip.AddrPort{}, team(1), "l", []byte("x")), ErrBadAddress)
	require.ErrorIs(t, a.Send(ctx, netip.MustParseAddrPort("127.0.0.1:0"), team(1), "l", nil), ErrBadAddress)
	require.ErrorIs(t, a.Send(ctx, netip.MustParseAddrPort("0.0.0.0:80"), team(1), "l", nil), ErrBadAddress)
	require.ErrorIs(t, a.SendSync(ctx, netip.MustParseAddrPort("[ff02::1]:80"), 1, nil), ErrBadAddress)
	require.ErrorIs(t, a.Send(ctx, peer, team(1), "l", make([]byte, DefaultMaxMessageSize+1)), ErrMessageTooLarge)

	for _, s := range []string{"", "localhost:80", "127.0.0.1", "1.2.3.4:99999", "[::1]", "::1:80", "127.0.0.1:0"} {
		_, err := ParseAddr(s)
		require.ErrorIs(t, err, ErrBadAddress, "%q", s)
	}
	ap, err := ParseAddr("[::ffff:127.0.0.1]:4000")
	require.NoError(t, err)
	require.Equal(t, netip.MustParseAddrPort("127.0.0.1:4000"), ap, "mapped addresses are one peer with their IPv4 form")

	_, _, err = a.Receive(make([]byte, 8))
	require.ErrorIs(t, err, ErrWouldBlock)
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, _, err = a.ReceiveContext(short, make([]byte, 8))
	require.ErrorIs(t, err, ErrTimeout)

	require.NoError(t, a.Close())
	require.NoError(t, a.Close(), "Close twice is harmless")
	require.ErrorIs(t, a.Send(ctx, peer, team(1), "l", nil), ErrClosed)
	_, _, err = a.Receive(make([]byte, 8))
	require.ErrorIs(t, err, ErrClosed)
}

func TestInvalidConfig(t *testing.T) {
	good := peerConfig(t, "alice")
	cases := map[string]func(*Config){
		"no bind":          func(c *Config) { c.BindAddr = "" },
		"no cert":          func(c *Config) { c.CertPEM = nil },
		"garbage key":      func(c *Config) { c.KeyPEM = []byte("not a key") },
		"no CA":            func(c *Config) { c.CAPEM = nil },
		"garbage CA":       func(c *Config) { c.CAPEM = []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n") },
		"queue below msg":  func(c *Config) { c.MaxMessageSize = 1 << 20; c.MaxQueueBytes = 1 << 10 },
		"negative conns":   func(c *Config) { c.MaxConnections = -1 },
		"negative timeout": func(c *Config) { c.IdleTimeout = -time.Second },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			cfg := good
			mutate(&cfg)
			_, err := NewEndpoint(cfg)
			require.ErrorIs(t, err, ErrInvalidConfig)
		})
	}
	cfg := good
	cfg.BindAddr = "not an address"
	_, err := NewEndpoint(cfg)
	require.ErrorIs(t, err, ErrBadAddress)
}

func TestReceiveUnblocksOnClose(t *testing.T) {
	a := newTestEndpoint(t, "alice")
	done := make(chan error, 1)
	go func() {
		_, _, err := a.ReceiveContext(context.Background(), make([]byte, 8))
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	require.NoError(t, a.Close())
	select {
	case err := <-done:
		require.ErrorIs(t, err, ErrClosed)
	case <-time.After(5 * time.Second):
		t.Fatal("receive still blocked after Close")
	}
}

func TestConcurrentSendsShareOneDial(t *testing.T) {
	a := newTestEndpoint(t, "alice")
	b := newTestEndpoint(t, "bob")
	const senders = 20
	var wg sync.WaitGroup
	for i := 0; i < senders; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := a.Send(sendCtx(t), b.LocalAddr(), team(1), fmt.Sprintf("s%d", i), []byte("x")); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	recvN(t, b, senders, 5*time.Second)
	require.Equal(t, uint64(1), a.Stats().Dials)
	require.Equal(t, uint64(1), b.Stats().Accepts)
}

func TestSlowDialDoesNotBlockOtherPeers(t *testing.T) {
	cfg := peerConfig(t, "alice")
	cfg.HandshakeTimeout = 2 * time.Second
	a := newEndpoint(t, cfg)
	b := newTestEndpoint(t, "bob")
	// A UDP socket that never answers: dials to it hang until the
	// handshake timeout.
	hole, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer hole.Close()
	holeAddr := hole.LocalAddr().(*net.UDPAddr).AddrPort()

	stuck := make(chan error, 1)
	go func() { stuck <- a.Send(context.Background(), holeAddr, team(1), "void", []byte("x")) }()
	time.Sleep(100 * time.Millisecond) // let the dial start
	select {
	case err := <-stuck:
		t.Fatalf("send to a silent peer returned early: %v", err)
	default:
	}
	// While that dial hangs, another peer is served.
	for i := 0; i < 10; i++ {
		require.NoError(t, a.Send(sendCtx(t), b.LocalAddr(), team(1), "live", []byte(fmt.Sprintf("live %d", i))))
	}
	checkInOrder(t, recvN(t, b, 10, 5*time.Second), []string{"live"}, 10)
	select {
	case err := <-stuck:
		require.ErrorIs(t, err, ErrConnection)
	case <-time.After(10 * time.Second):
		t.Fatal("send to a silent peer never gave up")
	}
}

func TestMoreChannelsThanThePeerStreamLimit(t *testing.T) {
	a := newTestEndpoint(t, "alice")
	bcfg := peerConfig(t, "bob")
	bcfg.MaxChannelsPerPeer = 4
	b := newEndpoint(t, bcfg)
	const channels, rounds = 12, 5
	labels := make([]string, channels)
	for i := range labels {
		labels[i] = fmt.Sprintf("c%02d", i)
	}
	ctx := sendCtx(t)
	for r := 0; r < rounds; r++ {
		for _, l := range labels {
			require.NoError(t, a.Send(ctx, b.LocalAddr(), team(1), l, []byte(fmt.Sprintf("%s %d", l, r))))
		}
	}
	checkInOrder(t, recvN(t, b, channels*rounds, 10*time.Second), labels, rounds)
	require.Equal(t, uint64(1), a.Stats().Dials, "one connection carried every channel")
}

func TestLargeMessagesFirstOnAChannel(t *testing.T) {
	a := newTestEndpoint(t, "alice")
	b := newTestEndpoint(t, "bob")
	sizes := []int{3 << 20, 64, 1 << 20, DefaultSendBufferBytes + 1, 100 << 10, 0, 5}
	msgs := make([][]byte, len(sizes))
	for i, n := range sizes {
		msgs[i] = make([]byte, n)
		for j := range msgs[i] {
			msgs[i][j] = byte(i*31 + j)
		}
		require.NoError(t, a.Send(sendCtx(t), b.LocalAddr(), team(1), "big", msgs[i]), "message %d", i)
	}
	got := recvN(t, b, len(sizes), 20*time.Second)
	for i, r := range got {
		require.Len(t, r.msg, len(msgs[i]), "message %d", i)
		require.True(t, bytes.Equal(msgs[i], r.msg), "message %d differs", i)
	}
}
