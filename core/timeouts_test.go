package core

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// silentPeer is a UDP socket that reads and discards everything.
func silentPeer(t *testing.T) netip.AddrPort {
	t.Helper()
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	t.Cleanup(func() { udp.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := udp.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	return udp.LocalAddr().(*net.UDPAddr).AddrPort()
}

func TestConnectTimeoutGivesConnectionError(t *testing.T) {
	t.Run("silent peer", func(t *testing.T) {
		cfg := peerConfig(t, "sender")
		cfg.ConnectTimeout = 300 * time.Millisecond
		cfg.SendTimeout = 5 * time.Second
		e := newEndpoint(t, cfg)
		target := silentPeer(t)
		start := time.Now()
		err := e.Send(context.Background(), target, team(1), "x", []byte("hello"))
		elapsed := time.Since(start)
		t.Logf("after %v: %v", elapsed, err)
		require.ErrorIs(t, err, ErrConnection)
		require.NotErrorIs(t, err, ErrTimeout)
		require.Contains(t, err.Error(), "connect timeout")
		require.Equal(t, uint64(0), e.Stats().OpenConnections)
		// The failed dial is forgotten: the next send dials again.
		err = e.Send(context.Background(), target, team(1), "x", []byte("hello"))
		require.ErrorIs(t, err, ErrConnection)
		require.Equal(t, uint64(2), e.Stats().Dials)
	})
	t.Run("config", func(t *testing.T) {
		cases := []struct {
			name             string
			connect, send    time.Duration
			wantInvalid      bool
			wantConnectAfter time.Duration
		}{
			{"equal to the send timeout", 2 * time.Second, 2 * time.Second, true, 0},
			{"longer than the send timeout", 3 * time.Second, 2 * time.Second, true, 0},
			{"longer than the default send timeout", DefaultSendTimeout, 0, true, 0},
			{"shorter", time.Second, 2 * time.Second, false, time.Second},
			{"defaults", 0, 0, false, DefaultConnectTimeout},
			{"no send timeout", time.Minute, -1, false, time.Minute},
			{"negative", -time.Second, 0, true, 0},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				cfg := peerConfig(t, "cfg")
				cfg.ConnectTimeout, cfg.SendTimeout = tc.connect, tc.send
				e, err := NewEndpoint(cfg)
				if tc.wantInvalid {
					require.ErrorIs(t, err, ErrInvalidConfig)
					require.Nil(t, e)
					return
				}
				require.NoError(t, err)
				defer e.Close()
				require.Equal(t, tc.wantConnectAfter, e.cfg.ConnectTimeout)
			})
		}
	})
}

func TestPeerAnnouncesItsMessageLimit(t *testing.T) {
	rcfg := peerConfig(t, "receiver")
	rcfg.MaxMessageSize = 1000
	recv := newEndpoint(t, rcfg)
	send := newTestEndpoint(t, "sender")
	ctx := sendCtx(t)

	err := send.Send(ctx, recv.LocalAddr(), team(1), "limit", bytes.Repeat([]byte{1}, 1001))
	require.ErrorIs(t, err, ErrMessageTooLarge)
	require.Contains(t, err.Error(), "1000")
	require.Contains(t, err.Error(), "1001")
	t.Logf("1001 bytes: %v", err)

	exact := bytes.Repeat([]byte{2}, 1000)
	require.NoError(t, send.Send(ctx, recv.LocalAddr(), team(1), "limit", exact))
	got := recvN(t, recv, 1, 5*time.Second)
	require.Equal(t, exact, got[0].msg, "the message at the limit")
	st := send.Stats()
	require.Equal(t, uint64(1), st.MessagesSent, "the refused message counted as sent")
	require.Equal(t, uint64(0), recv.Stats().StreamsReset)

	t.Run("own limit first", func(t *testing.T) {
		scfg := peerConfig(t, "small sender")
		scfg.MaxMessageSize = 500
		small := newEndpoint(t, scfg)
		err := small.Send(ctx, recv.LocalAddr(), team(1), "limit", make([]byte, 600))
		require.ErrorIs(t, err, ErrMessageTooLarge)
		require.Contains(t, err.Error(), "500")
		require.NotContains(t, err.Error(), "1000", "the peer's limit was applied, not ours")
		require.Equal(t, uint64(0), small.Stats().Dials, "refused before any dial")
		t.Logf("600 bytes: %v", err)
		// Within both limits it goes through.
		require.NoError(t, small.Send(ctx, recv.LocalAddr(), team(1), "limit", make([]byte, 500)))
		require.Len(t, recvN(t, recv, 1, 5*time.Second)[0].msg, 500)
	})
}

// TestOversizeFrameFromAnOlderPeerIsCounted plays a sender that ignores
// the limit the receiver announced: the receiver stops reading the
// channel's stream at the oversize frame, after telling the sender how
// many of its messages it queued, so the sender counts exactly the
// messages lost with it (the big one and the small ones accepted on the
// same stream after it), and the channel goes on in order.
//
// "back to back" sends the small messages in one burst and then nothing:
// all of them are usually accepted before the receiver's STOP_SENDING
// arrives, and no later send on the channel touches the stream. "paced"
// leaves time between them, so the stop arrives in the middle and the
// sends after it move to a new stream.
func TestOversizeFrameFromAnOlderPeerIsCounted(t *testing.T) {
	for _, tc := range []struct {
		name string
		gap  time.Duration
	}{
		{"back to back", 0},
		{"paced", time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) { testOversizeFrame(t, tc.gap) })
	}
}

func testOversizeFrame(t *testing.T, gap time.Duration) {
	const small = 100
	rcfg := peerConfig(t, "receiver")
	rcfg.MaxMessageSize = 1000
	recv := newEndpoint(t, rcfg)
	send := newTestEndpoint(t, "sender")
	ctx := sendCtx(t)

	// The first message opens the channel's stream, so the receiver's
	// final receipt count (1) is what tells the sender that the messages
	// after it were lost.
	require.NoError(t, send.Send(ctx, recv.LocalAddr(), team(1), "over", []byte("hi")))
	require.Equal(t, "hi", string(recvN(t, recv, 1, 5*time.Second)[0].msg))
	c, ok := send.conns.lookup(recv.LocalAddr())
	require.True(t, ok)
	require.Equal(t, uint64(1000), c.peerMaxMessage, "the receiver's HELLO announced its limit")
	c.peerMaxMessage = 1 << 30 // as if the peer had announced no limit

	require.NoError(t, send.Send(ctx, recv.LocalAddr(), team(1), "over", bytes.Repeat([]byte{'B'}, 2000)))
	for i := 0; i < small; i++ {
		if gap > 0 {
			time.Sleep(gap)
		}
		require.NoError(t, send.Send(ctx, recv.LocalAddr(), team(1), "over", []byte(fmt.Sprintf("m%09d", i))), "message %d", i)
	}

	// Receive until the sender's count says everything else was given up.
	var got []int
	buf := make([]byte, 4096)
	expected := func() uint64 { return uint64(1 + small - len(got)) }
	deadline := time.Now().Add(10 * time.Second)
	for send.Stats().MessagesUnconfirmed != expected() {
		require.True(t, time.Now().Before(deadline),
			"after 10 s: sender MessagesUnconfirmed %d, expected 1 + %d lost (receiver StreamsReset %d, delivered %v)",
			send.Stats().MessagesUnconfirmed, small-len(got), recv.Stats().StreamsReset, got)
		rctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		ch, n, err := recv.ReceiveContext(rctx, buf)
		cancel()
		if errors.Is(err, ErrTimeout) {
			continue
		}
		require.NoError(t, err)
		require.Equal(t, "over", ch.Label)
		require.Equal(t, 10, n, "the oversize message (or a piece of it) was delivered: %q", buf[:min(n, 20)])
		var seq int
		_, err = fmt.Sscanf(string(buf[:n]), "m%d", &seq)
		require.NoError(t, err)
		got = append(got, seq)
	}

	// Nothing more comes, and the count stays.
	time.Sleep(300 * time.Millisecond)
	_, _, err := recv.Receive(buf)
	require.ErrorIs(t, err, ErrWouldBlock, "a message arrived after the count settled")
	require.Equal(t, expected(), send.Stats().MessagesUnconfirmed)

	// What arrived is in order, without gaps: the lost ones are those
	// accepted on the stopped stream, right after the big one.
	for i, seq := range got {
		require.Equal(t, small-len(got)+i, seq, "out of order or with a gap: %v", got)
	}
	st := send.Stats()
	t.Logf("sent 1 + %d; delivered %d small; unconfirmed %d; sender MessagesSent %d; receiver StreamsReset %d",
		small, len(got), st.MessagesUnconfirmed, st.MessagesSent, recv.Stats().StreamsReset)
	require.Equal(t, uint64(1), recv.Stats().StreamsReset, "the receiver stopped one stream")
	require.Equal(t, uint64(2+small), st.MessagesSent)

	// The channel goes on.
	require.NoError(t, send.Send(ctx, recv.LocalAddr(), team(1), "over", []byte("after")))
	require.Equal(t, "after", string(recvN(t, recv, 1, 5*time.Second)[0].msg))
	require.Equal(t, expected(), send.Stats().MessagesUnconfirmed)
}
