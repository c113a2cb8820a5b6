package fault

import (
	"context"
	"crypto/tls"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aranya-quic/aranya-quic/core"
	"github.com/aranya-quic/aranya-quic/core/certgen"
	"github.com/aranya-quic/aranya-quic/core/wire"
)

type untrusted struct {
	name string
	cert *certgen.Peer // nil: no certificate
	alpn string
	// dialOnly: a TLS server always has a certificate, so there is no
	// "us dialing them" direction.
	dialOnly bool
}

func untrustedPeers(t *testing.T) []untrusted {
	other, err := certgen.NewCA("another CA")
	require.NoError(t, err)
	fromOther, err := other.Issue("mallory", certgen.PeerOptions{})
	require.NoError(t, err)
	expired, err := pki().Issue("expired", certgen.PeerOptions{
		NotBefore: time.Now().Add(-48 * time.Hour),
		NotAfter:  time.Now().Add(-24 * time.Hour),
	})
	require.NoError(t, err)
	notYet, err := pki().Issue("not-yet-valid", certgen.PeerOptions{
		NotBefore: time.Now().Add(24 * time.Hour),
		NotAfter:  time.Now().Add(48 * time.Hour),
	})
	require.NoError(t, err)
	self, err := certgen.SelfSigned("self")
	require.NoError(t, err)
	return []untrusted{
		{name: "certificate from another CA", cert: fromOther},
		{name: "expired certificate", cert: expired},
		{name: "certificate not yet valid", cert: notYet},
		{name: "self-signed certificate", cert: self},
		{name: "no certificate", cert: nil, dialOnly: true},
		{name: "wrong ALPN", cert: issue(t, "wrong-alpn"), alpn: "h3"},
	}
}

// Untrusted peers dialing us: the connection is refused and nothing they
// send reaches the receive queue; HandshakeFailures counts each.
func TestUntrustedPeersDialingUs(t *testing.T) {
	cfg := config(t, "target")
	cfg.HandshakeTimeout = 2 * time.Second
	e := endpoint(t, cfg)
	for _, u := range untrustedPeers(t) {
		t.Run(u.name, func(t *testing.T) {
			failures := e.Stats().HandshakeFailures
			tr := rawTransport(t)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			conn, err := tr.Dial(ctx, net.UDPAddrFromAddrPort(e.LocalAddr()), rawTLS(u.cert, u.alpn), rawQUIC)
			if err == nil {
				// In TLS 1.3 the client finishes first: try to get a
				// message in before the endpoint checks our certificate.
				if ctrl, err := conn.OpenUniStream(); err == nil {
					var inst [wire.InstanceIDLen]byte
					ctrl.Write(wire.AppendControl(nil, wire.ControlHello, inst[:]))
				}
				if s, err := conn.OpenStream(); err == nil {
					s.Write(append(header(t, "intruder"), frame([]byte("let me in"))...))
					s.Close()
				}
				select {
				case <-conn.Context().Done():
				case <-time.After(10 * time.Second):
					t.Fatal("the endpoint kept an untrusted connection open")
				}
				err = context.Cause(conn.Context())
			}
			t.Logf("refused: %v", err)
			require.Error(t, err)
			requireQuiet(t, e, 200*time.Millisecond)
			require.Equal(t, uint64(0), e.Stats().MessagesReceived)
			require.Eventually(t, func() bool { return e.Stats().HandshakeFailures > failures },
				5*time.Second, 5*time.Millisecond, "HandshakeFailures counts the refusal")
		})
	}
	goodPeerDelivers(t, e, 5)
}

// rawServer is a quic-go listener with an arbitrary identity that records
// every byte any client sends it on any stream.
type rawServer struct {
	addr netip.AddrPort
	mu   sync.Mutex
	got  []byte
	acc  int
}

func startRawServer(t *testing.T, cert *certgen.Peer, alpn string) *rawServer {
	t.Helper()
	tr := rawTransport(t)
	conf := rawTLS(cert, alpn)
	conf.ClientAuth = tls.RequireAnyClientCert
	ln, err := tr.Listen(conf, rawQUIC)
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	s := &rawServer{addr: tr.Conn.LocalAddr().(*net.UDPAddr).AddrPort()}
	record := func(r interface{ Read([]byte) (int, error) }) {
		buf := make([]byte, 4096)
		for {
			n, err := r.Read(buf)
			s.mu.Lock()
			s.got = append(s.got, buf[:n]...)
			s.mu.Unlock()
			if err != nil {
				return
			}
		}
	}
	go func() {
		for {
			conn, err := ln.Accept(context.Background())
			if err != nil {
				return
			}
			s.mu.Lock()
			s.acc++
			s.mu.Unlock()
			go func() {
				for {
					str, err := conn.AcceptStream(context.Background())
					if err != nil {
						return
					}
					go record(str)
				}
			}()
			go func() {
				for {
					str, err := conn.AcceptUniStream(context.Background())
					if err != nil {
						return
					}
					go record(str)
				}
			}()
		}
	}()
	return s
}

// Us dialing untrusted peers: Send fails with ErrTLS, no message leaves,
// HandshakeFailures counts each.
func TestDialingUntrustedPeers(t *testing.T) {
	cfg := config(t, "dialer")
	cfg.HandshakeTimeout = 2 * time.Second
	cfg.SendTimeout = 5 * time.Second
	e := endpoint(t, cfg)
	for _, u := range untrustedPeers(t) {
		if u.dialOnly {
			continue
		}
		t.Run(u.name, func(t *testing.T) {
			failures := e.Stats().HandshakeFailures
			srv := startRawServer(t, u.cert, u.alpn)
			err := sendWatch(t, 15*time.Second, func() error {
				return e.Send(context.Background(), srv.addr, team(1), "secret", []byte("for trusted eyes only"))
			})
			t.Logf("send: %v", err)
			require.ErrorIs(t, err, core.ErrTLS)
			time.Sleep(100 * time.Millisecond)
			srv.mu.Lock()
			require.NotContains(t, string(srv.got), "for trusted eyes only", "a message reached an untrusted peer")
			srv.mu.Unlock()
			require.Equal(t, uint64(0), e.Stats().MessagesSent)
			require.Greater(t, e.Stats().HandshakeFailures, failures, "HandshakeFailures counts the refusal")
		})
	}
}
