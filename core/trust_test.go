package core

import (
	"context"
	"crypto/sha256"
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aranya-quic/aranya-quic/core/certgen"
)

// errOf is the error of a call that also reports a result the test does
// not look at.
func errOf[T any](_ T, err error) error { return err }

// idOf is the peer id of a config's certificate.
func idOf(t testing.TB, cfg Config) PeerID {
	t.Helper()
	id, err := PeerIDFromPEM(cfg.CertPEM)
	require.NoError(t, err)
	return id
}

// streamer sends to one channel of addr until stopped, and records the
// first error after which it stops.
type streamer struct {
	stop chan struct{}
	done chan struct{}
	sent atomic.Int64
	err  error
}

func startStreaming(e *Endpoint, addr netip.AddrPort, tm TeamID) *streamer {
	s := &streamer{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			select {
			case <-s.stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := e.Send(ctx, addr, tm, "stream", []byte("tick"))
			cancel()
			if err != nil {
				s.err = err
				return
			}
			s.sent.Add(1)
		}
	}()
	return s
}

// failure waits for the streamer to stop on its own, with an error.
func (s *streamer) failure(t testing.TB) error {
	t.Helper()
	select {
	case <-s.done:
		return s.err
	case <-time.After(20 * time.Second):
		t.Fatal("the streamer's sends kept succeeding")
		return nil
	}
}

func (s *streamer) halt() error {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
	return s.err
}

// drainFrom takes everything alice receives for a while and counts what
// came from peer.
func drainFrom(t testing.TB, e *Endpoint, peer PeerID, quiet time.Duration) int {
	t.Helper()
	buf := make([]byte, 1<<16)
	n := 0
	for {
		ctx, cancel := context.WithTimeout(context.Background(), quiet)
		ch, _, err := e.ReceiveContext(ctx, buf)
		cancel()
		if errors.Is(err, ErrTimeout) {
			return n
		}
		require.NoError(t, err)
		if ch.PeerID == peer {
			n++
		}
	}
}

func TestSetTrustRevokesAStreamingPeer(t *testing.T) {
	aliceCfg, bobCfg, carolCfg := peerConfig(t, "alice"), peerConfig(t, "bob"), peerConfig(t, "carol")
	alice, bob := newEndpoint(t, aliceCfg), newEndpoint(t, bobCfg)
	bobID := idOf(t, bobCfg)

	s := startStreaming(bob, alice.LocalAddr(), team(1))
	// Wait until bob's messages are flowing.
	require.Len(t, recvN(t, alice, 20, 10*time.Second), 20)

	revoked, err := alice.SetTrust(aliceCfg.CAPEM, []PeerID{idOf(t, carolCfg)})
	require.NoError(t, err)
	require.Equal(t, []PeerID{bobID}, revoked)
	// Nothing from bob is delivered once SetTrust returned: not what was
	// queued before, not what was in flight.
	require.Zero(t, drainFrom(t, alice, bobID, 500*time.Millisecond))

	require.ErrorIs(t, s.failure(t), ErrTLS, "bob's sends must fail with ErrTLS once he is revoked")
	err = bob.Send(sendCtx(t), alice.LocalAddr(), team(1), "stream", []byte("again"))
	require.ErrorIs(t, err, ErrTLS)
	require.Zero(t, drainFrom(t, alice, bobID, 200*time.Millisecond))

	st := alice.Stats()
	require.Equal(t, uint64(1), st.ConnectionsRevoked)
	require.Zero(t, st.QueueMessages)
	for _, c := range alice.Connections() {
		require.NotEqual(t, bobID, c.PeerID)
	}

	// Re-admitted, bob works again, in both directions.
	revoked, err = alice.SetTrust(aliceCfg.CAPEM, nil)
	require.NoError(t, err)
	require.Empty(t, revoked)
	require.NoError(t, bob.Send(sendCtx(t), alice.LocalAddr(), team(1), "stream", []byte("back")))
	got := recvN(t, alice, 1, 10*time.Second)
	require.Equal(t, "back", string(got[0].msg))
	require.Equal(t, bobID, got[0].ch.PeerID)
	require.NoError(t, alice.Send(sendCtx(t), bob.LocalAddr(), team(1), "stream", []byte("hello bob")))
	require.Equal(t, "hello bob", string(recvN(t, bob, 1, 10*time.Second)[0].msg))
}

func TestSetTrustRevokesWhatAliceDials(t *testing.T) {
	aliceCfg, bobCfg := peerConfig(t, "alice"), peerConfig(t, "bob")
	alice, bob := newEndpoint(t, aliceCfg), newEndpoint(t, bobCfg)
	require.NoError(t, alice.Send(sendCtx(t), bob.LocalAddr(), team(1), "x", []byte("1")))
	recvN(t, bob, 1, 10*time.Second)

	other, err := certgen.NewCA("another CA")
	require.NoError(t, err)
	revoked, err := alice.SetTrust(other.CertPEM, nil)
	require.NoError(t, err)
	require.Equal(t, []PeerID{idOf(t, bobCfg)}, revoked)
	err = alice.Send(sendCtx(t), bob.LocalAddr(), team(1), "x", []byte("2"))
	require.ErrorIs(t, err, ErrTLS, "a send after the revocation must not find the old connection")
}

func TestSetTrustDropsQueuedMessagesOfAPeerWhoseConnectionIsGone(t *testing.T) {
	aliceCfg, bobCfg, carolCfg := peerConfig(t, "alice"), peerConfig(t, "bob"), peerConfig(t, "carol")
	alice, bob := newEndpoint(t, aliceCfg), newEndpoint(t, bobCfg)
	bobID := idOf(t, bobCfg)
	for i := range 5 {
		require.NoError(t, bob.Send(sendCtx(t), alice.LocalAddr(), team(1), "x", []byte{byte(i)}))
	}
	require.NoError(t, bob.Close(), "bob's messages were confirmed: they wait in alice's queue")
	require.Eventually(t, func() bool { return len(alice.Connections()) == 0 }, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, uint64(5), alice.Stats().QueueMessages)

	revoked, err := alice.SetTrust(aliceCfg.CAPEM, []PeerID{idOf(t, carolCfg)})
	require.NoError(t, err)
	require.Equal(t, []PeerID{bobID}, revoked, "a peer without a connection is revoked, and named")
	require.Zero(t, alice.Stats().QueueMessages)
	require.Equal(t, uint64(5), alice.Stats().MessagesRevoked)
	require.Zero(t, alice.Stats().ConnectionsRevoked)
	require.Zero(t, drainFrom(t, alice, bobID, 100*time.Millisecond))

	revoked, err = alice.SetTrust(aliceCfg.CAPEM, []PeerID{idOf(t, carolCfg)})
	require.NoError(t, err)
	require.Empty(t, revoked, "a peer is revoked once")
}

func TestSetTrustWithCallbackStartsNoCallbackAfterReturn(t *testing.T) {
	aliceCfg, bobCfg, carolCfg := peerConfig(t, "alice"), peerConfig(t, "bob"), peerConfig(t, "carol")
	bobID := idOf(t, bobCfg)
	var revoked atomic.Bool
	var late, before atomic.Int64
	aliceCfg.OnMessage = func(ch *Channel, _ []byte) {
		if ch.PeerID != bobID {
			return
		}
		if revoked.Load() {
			late.Add(1)
		} else {
			before.Add(1)
		}
		time.Sleep(time.Millisecond) // a callback that takes a while
	}
	alice, bob := newEndpoint(t, aliceCfg), newEndpoint(t, bobCfg)
	var streams []*streamer
	for i := range 4 {
		streams = append(streams, startStreaming(bob, alice.LocalAddr(), team(byte(i+1))))
	}
	require.Eventually(t, func() bool { return before.Load() > 40 }, 10*time.Second, 5*time.Millisecond)
	_, err := alice.SetTrust(aliceCfg.CAPEM, []PeerID{idOf(t, carolCfg)})
	require.NoError(t, err)
	revoked.Store(true)
	for _, s := range streams {
		require.ErrorIs(t, s.failure(t), ErrTLS)
	}
	require.Zero(t, late.Load(), "an OnMessage call for the revoked peer started after SetTrust returned")
}

func TestSetTrustFromInsideTheCallbackDoesNotWaitForItself(t *testing.T) {
	aliceCfg, bobCfg, carolCfg := peerConfig(t, "alice"), peerConfig(t, "bob"), peerConfig(t, "carol")
	var alice *Endpoint
	var once sync.Once
	result := make(chan error, 1)
	aliceCfg.OnMessage = func(ch *Channel, msg []byte) {
		once.Do(func() {
			_, err := alice.SetTrustFromCallback(aliceCfg.CAPEM, []PeerID{idOf(t, carolCfg)})
			result <- err
		})
	}
	alice = newEndpoint(t, aliceCfg)
	bob := newEndpoint(t, bobCfg)
	require.NoError(t, bob.Send(sendCtx(t), alice.LocalAddr(), team(1), "x", []byte("revoke me")))
	select {
	case err := <-result:
		require.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("SetTrustFromCallback inside OnMessage did not return")
	}
}

func TestSetIdentityRotatesWhileConnectionsAreUp(t *testing.T) {
	aliceCfg, bobCfg, carolCfg := peerConfig(t, "alice"), peerConfig(t, "bob"), peerConfig(t, "carol")
	alice, bob := newEndpoint(t, aliceCfg), newEndpoint(t, bobCfg)
	oldID := idOf(t, aliceCfg)
	require.NoError(t, alice.Send(sendCtx(t), bob.LocalAddr(), team(1), "x", []byte("before")))
	require.Equal(t, oldID, recvN(t, bob, 1, 10*time.Second)[0].ch.PeerID)

	newID := idOf(t, carolCfg)
	require.NoError(t, alice.SetIdentity(carolCfg.CertPEM, carolCfg.KeyPEM))
	require.Equal(t, newID, alice.LocalPeerID())

	// The connection set up before keeps working, both ways, as it was.
	require.NoError(t, alice.Send(sendCtx(t), bob.LocalAddr(), team(1), "x", []byte("after")))
	got := recvN(t, bob, 1, 10*time.Second)
	require.Equal(t, "after", string(got[0].msg))
	require.Equal(t, oldID, got[0].ch.PeerID)
	require.NoError(t, bob.Send(sendCtx(t), alice.LocalAddr(), team(1), "x", []byte("reply")))
	require.Equal(t, "reply", string(recvN(t, alice, 1, 10*time.Second)[0].msg))
	require.Equal(t, uint64(1), bob.Stats().Accepts+bob.Stats().Dials)

	// A new connection presents the new certificate, dialed or accepted.
	dave := newTestEndpoint(t, "dave")
	require.NoError(t, alice.Send(sendCtx(t), dave.LocalAddr(), team(1), "x", []byte("new")))
	require.Equal(t, newID, recvN(t, dave, 1, 10*time.Second)[0].ch.PeerID)
	erin := newTestEndpoint(t, "erin")
	require.NoError(t, erin.Send(sendCtx(t), alice.LocalAddr(), team(1), "x", []byte("to alice")))
	recvN(t, alice, 1, 10*time.Second)
	var seen bool
	for _, c := range erin.Connections() {
		if c.Addr == alice.LocalAddr() {
			seen = true
			require.Equal(t, newID, c.PeerID)
		}
	}
	require.True(t, seen)
}

func authConfig(t testing.TB, name string) Config {
	cfg := peerConfig(t, name)
	cfg.TeamAuthorization = true
	return cfg
}

func TestTeamAuthorizationRefusesOtherTeams(t *testing.T) {
	aliceCfg, bobCfg := authConfig(t, "alice"), peerConfig(t, "bob")
	alice, bob := newEndpoint(t, aliceCfg), newEndpoint(t, bobCfg)
	bobID := idOf(t, bobCfg)

	// Allowed on no team: not even sync.
	err := bob.SendSync(sendCtx(t), alice.LocalAddr(), 7, []byte("sync"))
	require.ErrorIs(t, err, ErrNotAuthorized)

	require.NoError(t, alice.AllowTeam(bobID, team(1)))
	require.NoError(t, bob.Send(sendCtx(t), alice.LocalAddr(), team(1), "ok", []byte("allowed")))
	require.Equal(t, "allowed", string(recvN(t, alice, 1, 10*time.Second)[0].msg))
	require.NoError(t, bob.SendSync(sendCtx(t), alice.LocalAddr(), 7, []byte("sync")))
	require.Equal(t, "sync", string(recvN(t, alice, 1, 10*time.Second)[0].msg))

	for range 3 { // a refusal is not cached as a stream that works
		err = bob.Send(sendCtx(t), alice.LocalAddr(), team(2), "no", []byte("refused"))
		require.ErrorIs(t, err, ErrNotAuthorized)
	}
	require.Zero(t, drainFrom(t, alice, bobID, 300*time.Millisecond))
	require.Equal(t, uint64(4), alice.Stats().StreamsRefused)
	require.Zero(t, bob.Stats().MessagesUnconfirmed, "a refused message was not accepted")

	// The non-blocking send learns it from its event.
	id, err := bob.TrySend(PeerAt(alice.LocalAddr()), team(2), "no", []byte("queued"))
	require.NoError(t, err)
	ev, _ := waitEvent(t, bob, EventSendFailed)
	require.Equal(t, id, ev.ID)
	require.ErrorIs(t, ev.Err, ErrNotAuthorized)
}

func TestRevokeTeamStopsOpenStreams(t *testing.T) {
	aliceCfg, bobCfg := authConfig(t, "alice"), peerConfig(t, "bob")
	alice, bob := newEndpoint(t, aliceCfg), newEndpoint(t, bobCfg)
	bobID := idOf(t, bobCfg)
	require.NoError(t, alice.AllowTeam(bobID, team(1)))
	require.NoError(t, alice.AllowTeam(bobID, team(2)))

	s1 := startStreaming(bob, alice.LocalAddr(), team(1))
	s2 := startStreaming(bob, alice.LocalAddr(), team(2))
	require.Len(t, recvN(t, alice, 40, 10*time.Second), 40)

	last, err := alice.RevokeTeam(bobID, team(1))
	require.NoError(t, err)
	require.False(t, last, "bob keeps team 2")
	buf := make([]byte, 1<<16)
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		ch, _, err := alice.Receive(buf)
		if errors.Is(err, ErrWouldBlock) {
			time.Sleep(time.Millisecond)
			continue
		}
		require.NoError(t, err)
		require.NotEqual(t, team(1), ch.TeamID, "a message of the revoked team was delivered after RevokeTeam returned")
	}
	require.ErrorIs(t, s1.failure(t), ErrNotAuthorized)
	require.NoError(t, s2.halt(), "the peer's other team is untouched")
	require.ErrorIs(t, bob.Send(sendCtx(t), alice.LocalAddr(), team(1), "stream", []byte("x")), ErrNotAuthorized)

	// Revoking the last team takes the sync streams too.
	require.NoError(t, bob.SendSync(sendCtx(t), alice.LocalAddr(), 3, []byte("s")))
	last, err = alice.RevokeTeam(bobID, team(2))
	require.NoError(t, err)
	require.True(t, last, "team 2 was bob's last")
	last, err = alice.RevokeTeam(bobID, team(2))
	require.NoError(t, err)
	require.False(t, last, "revoking a pair that is not allowed does nothing")
	require.Eventually(t, func() bool {
		return errors.Is(bob.SendSync(sendCtx(t), alice.LocalAddr(), 3, []byte("s")), ErrNotAuthorized)
	}, 10*time.Second, 10*time.Millisecond)

	// Allowed again, it works again.
	require.NoError(t, alice.AllowTeam(bobID, team(1)))
	require.NoError(t, bob.Send(sendCtx(t), alice.LocalAddr(), team(1), "stream", []byte("back")))
	for _, m := range recvN(t, alice, 1, 10*time.Second) {
		require.Equal(t, "back", string(m.msg))
	}
}

func TestTrustCallsRejectBadInputAndChangeNothing(t *testing.T) {
	aliceCfg, bobCfg := authConfig(t, "alice"), peerConfig(t, "bob")
	alice, bob := newEndpoint(t, aliceCfg), newEndpoint(t, bobCfg)
	bobID := idOf(t, bobCfg)
	require.NoError(t, alice.AllowTeam(bobID, team(1)))
	require.NoError(t, bob.Send(sendCtx(t), alice.LocalAddr(), team(1), "x", []byte("1")))
	recvN(t, alice, 1, 10*time.Second)

	corrupt := append([]byte(nil), aliceCfg.CAPEM...)
	corrupt[len(corrupt)/2] ^= 0x5a
	for name, ca := range map[string][]byte{
		"empty":     nil,
		"corrupt":   corrupt,
		"truncated": aliceCfg.CAPEM[:len(aliceCfg.CAPEM)/2],
		"not a PEM": []byte("hello"),
		"a key":     aliceCfg.KeyPEM,
	} {
		_, err := alice.SetTrust(ca, nil)
		require.ErrorIs(t, err, ErrInvalidConfig, name)
	}
	require.ErrorIs(t, alice.SetIdentity(nil, aliceCfg.KeyPEM), ErrInvalidConfig)
	require.ErrorIs(t, alice.SetIdentity(aliceCfg.CertPEM, bobCfg.KeyPEM), ErrInvalidConfig, "a key that does not match")
	require.ErrorIs(t, alice.SetIdentity(corrupt, aliceCfg.KeyPEM), ErrInvalidConfig)
	require.ErrorIs(t, alice.AllowTeam(PeerID{}, team(1)), ErrInvalidConfig)
	require.ErrorIs(t, alice.AllowTeam(bobID, TeamID{}), ErrInvalidConfig)
	require.ErrorIs(t, errOf(alice.RevokeTeam(PeerID{}, team(1))), ErrInvalidConfig)
	require.ErrorIs(t, bob.AllowTeam(bobID, team(1)), ErrInvalidConfig, "authorization is off at bob")
	_, err := PeerIDFromPEM([]byte("nothing"))
	require.ErrorIs(t, err, ErrInvalidConfig)

	// Nothing changed: the same connection, identity and permissions.
	require.Equal(t, idOf(t, aliceCfg), alice.LocalPeerID())
	require.NoError(t, bob.Send(sendCtx(t), alice.LocalAddr(), team(1), "x", []byte("2")))
	require.Equal(t, "2", string(recvN(t, alice, 1, 10*time.Second)[0].msg))
	require.Zero(t, alice.Stats().ConnectionsRevoked)
	require.Equal(t, uint64(1), alice.Stats().Accepts)
}

func TestTrustChangesRaceSendsAndReceives(t *testing.T) {
	aliceCfg, bobCfg, carolCfg := authConfig(t, "alice"), peerConfig(t, "bob"), peerConfig(t, "carol")
	alice, bob, carol := newEndpoint(t, aliceCfg), newEndpoint(t, bobCfg), newEndpoint(t, carolCfg)
	bobID, carolID := idOf(t, bobCfg), idOf(t, carolCfg)
	require.NoError(t, alice.AllowTeam(carolID, team(9)))

	stop := make(chan struct{})
	var wg sync.WaitGroup
	run := func(f func(i int)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				f(i)
			}
		}()
	}
	run(func(i int) { // trusts carol throughout, bob only sometimes
		pins := []PeerID{carolID}
		if i%2 == 0 {
			pins = append(pins, bobID)
		}
		_, err := alice.SetTrust(aliceCfg.CAPEM, pins)
		require.NoError(t, err)
		time.Sleep(2 * time.Millisecond)
	})
	run(func(i int) {
		if i%2 == 0 {
			require.NoError(t, alice.AllowTeam(bobID, team(1)))
		} else {
			require.NoError(t, errOf(alice.RevokeTeam(bobID, team(1))))
		}
		time.Sleep(time.Millisecond)
	})
	run(func(int) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		err := bob.Send(ctx, alice.LocalAddr(), team(1), "race", []byte("b"))
		if err != nil && !errors.Is(err, ErrTLS) && !errors.Is(err, ErrNotAuthorized) &&
			!errors.Is(err, ErrConnection) && !errors.Is(err, ErrTimeout) {
			t.Errorf("bob's send: unexpected error %v", err)
		}
	})
	run(func(int) {
		_, _ = alice.TrySend(PeerAt(bob.LocalAddr()), team(1), "back", []byte("a"))
		_ = alice.Connections()
		time.Sleep(time.Millisecond)
	})
	var carolSent atomic.Int64
	run(func(int) {
		require.NoError(t, carol.Send(sendCtx(t), alice.LocalAddr(), team(9), "steady", []byte("c")))
		carolSent.Add(1)
	})
	got := 0
	buf := make([]byte, 1<<16)
	end := time.Now().Add(2 * time.Second)
	for time.Now().Before(end) {
		ch, _, err := alice.Receive(buf)
		if errors.Is(err, ErrWouldBlock) {
			time.Sleep(time.Millisecond)
			continue
		}
		require.NoError(t, err)
		if ch.PeerID == carolID {
			got++
		}
	}
	close(stop)
	wg.Wait()
	// Carol stays trusted and allowed throughout: none of her messages is
	// lost while bob's trust flaps.
	require.Eventually(t, func() bool {
		for {
			ch, _, err := alice.Receive(buf)
			if err != nil {
				break
			}
			if ch.PeerID == carolID {
				got++
			}
		}
		return int64(got) == carolSent.Load()
	}, 10*time.Second, 10*time.Millisecond)
	require.Zero(t, carol.Stats().MessagesUnconfirmed)
}

func TestConnectionsDescribeEachConnection(t *testing.T) {
	aliceCfg, bobCfg := peerConfig(t, "alice"), peerConfig(t, "bob")
	alice, bob := newEndpoint(t, aliceCfg), newEndpoint(t, bobCfg)
	require.Empty(t, alice.Connections())
	for i := range 10 {
		require.NoError(t, alice.Send(sendCtx(t), bob.LocalAddr(), team(1), "x", make([]byte, 100+i)))
	}
	recvN(t, bob, 10, 10*time.Second)
	require.NoError(t, bob.Send(sendCtx(t), alice.LocalAddr(), team(1), "x", []byte("reply")))
	recvN(t, alice, 1, 10*time.Second)
	// A reader counts a message just after queueing it, so the receiving
	// side's counts may trail what was taken by a moment.
	var conns, back []ConnInfo
	require.Eventually(t, func() bool {
		conns, back = alice.Connections(), bob.Connections()
		return len(conns) == 1 && len(back) == 1 && conns[0].MessagesReceived == 1 && back[0].MessagesReceived == 10
	}, 10*time.Second, time.Millisecond)
	c := conns[0]
	require.Equal(t, bob.LocalAddr(), c.Addr)
	require.Equal(t, sha256.Sum256(bob.id.cert.Load().Certificate[0]), c.PeerID)
	require.True(t, c.Dialed)
	require.False(t, c.Draining)
	require.False(t, c.ConnectedAt.IsZero())
	require.Positive(t, c.SmoothedRTT)
	require.Positive(t, c.MinRTT)
	require.Positive(t, c.CongestionWindow)
	require.Positive(t, c.PacketsSent)
	require.Equal(t, uint64(10), c.MessagesSent)
	require.Equal(t, uint64(10*100+45), c.BytesSent)
	require.Equal(t, uint64(1), c.MessagesReceived)
	require.Equal(t, uint64(5), c.BytesReceived)
	require.Equal(t, alice.Stats().CongestionControl, c.CongestionControl)
	require.Equal(t, c.CongestionControl == CongestionBBR2, c.BytesInFlightKnown)

	require.False(t, back[0].Dialed)
	require.Equal(t, alice.LocalAddr(), back[0].Addr)
	require.Equal(t, uint64(10), back[0].MessagesReceived)
}
