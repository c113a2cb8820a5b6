package fault

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/stretchr/testify/require"

	"github.com/aranya-quic/aranya-quic/core"
	"github.com/aranya-quic/aranya-quic/core/certgen"
	"github.com/aranya-quic/aranya-quic/core/wire"
)

// rawPeer is a hand-driven quic-go client: it speaks as much of the
// protocol as a test wants and nothing more.
type rawPeer struct {
	t    testing.TB
	tr   *quic.Transport
	conn *quic.Conn
	addr netip.AddrPort // its own address, as the endpoint sees it
	// peerMaxMessage is the limit the endpoint announced in its HELLO.
	peerMaxMessage uint64
}

type rawOptions struct {
	cert    *certgen.Peer // nil: no client certificate
	alpn    string        // "" means wire.ALPN
	noHello bool
}

func rawTLS(cert *certgen.Peer, alpn string) *tls.Config {
	if alpn == "" {
		alpn = wire.ALPN
	}
	c := &tls.Config{
		MinVersion:         tls.VersionTLS13,
		InsecureSkipVerify: true,
		NextProtos:         []string{alpn},
		ServerName:         "aranya-quic-peer",
	}
	if cert != nil {
		kp, err := tls.X509KeyPair(cert.CertPEM, cert.KeyPEM)
		if err != nil {
			panic(err)
		}
		c.Certificates = []tls.Certificate{kp}
	}
	return c
}

func rawTransport(t testing.TB) *quic.Transport {
	t.Helper()
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	tr := &quic.Transport{Conn: udp}
	t.Cleanup(func() {
		tr.Close()
		udp.Close()
	})
	return tr
}

var rawQUIC = &quic.Config{
	MaxIdleTimeout:        30 * time.Second,
	KeepAlivePeriod:       2 * time.Second,
	MaxIncomingStreams:    100,
	MaxIncomingUniStreams: 10,
}

// dialRaw connects to the endpoint at target and, unless told not to,
// sends our HELLO on a control stream and waits for the endpoint's, so the
// endpoint treats the connection as a peer's.
func dialRaw(t testing.TB, target netip.AddrPort, o rawOptions) (*rawPeer, error) {
	t.Helper()
	tr := rawTransport(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := tr.Dial(ctx, net.UDPAddrFromAddrPort(target), rawTLS(o.cert, o.alpn), rawQUIC)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { conn.CloseWithError(0, "") })
	p := &rawPeer{t: t, tr: tr, conn: conn, addr: tr.Conn.LocalAddr().(*net.UDPAddr).AddrPort()}
	if o.noHello {
		return p, nil
	}
	ctrl, err := conn.OpenUniStream()
	if err != nil {
		return nil, err
	}
	var instance [wire.InstanceIDLen]byte
	rand.Read(instance[:])
	if _, err := ctrl.Write(wire.AppendControl(nil, wire.ControlHello, wire.AppendHello(nil, instance, 1<<30))); err != nil {
		return nil, err
	}
	in, err := conn.AcceptUniStream(ctx)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = in.SetReadDeadline(dl)
	}
	m, err := wire.ReadControl(bufio.NewReader(in))
	if err != nil {
		return nil, err
	}
	if _, p.peerMaxMessage, err = wire.ParseHello(m.Payload); err != nil {
		return nil, err
	}
	return p, nil
}

func mustDialRaw(t testing.TB, target netip.AddrPort) *rawPeer {
	t.Helper()
	p, err := dialRaw(t, target, rawOptions{cert: issue(t, "raw")})
	require.NoError(t, err)
	return p
}

func readFull(ctx context.Context, r interface {
	Read([]byte) (int, error)
	SetReadDeadline(time.Time) error
}, buf []byte) error {
	if dl, ok := ctx.Deadline(); ok {
		_ = r.SetReadDeadline(dl)
	}
	for off := 0; off < len(buf); {
		n, err := r.Read(buf[off:])
		off += n
		if err != nil {
			return err
		}
	}
	return nil
}

// open opens a channel stream and writes b on it.
func (p *rawPeer) open(b []byte) *quic.Stream {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := p.conn.OpenStreamSync(ctx)
	require.NoError(p.t, err)
	if len(b) > 0 {
		_, err = s.Write(b)
		require.NoError(p.t, err)
	}
	return s
}

// header is a valid channel header for label.
func header(t testing.TB, label string) []byte {
	t.Helper()
	h, err := wire.AppendHeader(nil, &wire.QuicMessage{Kind: wire.KindChannel, Channel: &wire.ChannelMessage{TeamID: team(9), Label: label}})
	require.NoError(t, err)
	return h
}

func frame(msg []byte) []byte {
	return append(wire.AppendFrameHeader(nil, len(msg)), msg...)
}

// sendGood sends n messages on label over a well-formed stream of the raw
// peer and FINs it.
func (p *rawPeer) sendGood(label string, n, size int) {
	p.t.Helper()
	b := header(p.t, label)
	for i := 0; i < n; i++ {
		b = append(b, frame(payload(label, i, size))...)
	}
	s := p.open(b)
	require.NoError(p.t, s.Close())
}

// goodPeerDelivers checks that a normal endpoint can still send n
// messages to e and that they, and only they, arrive.
func goodPeerDelivers(t testing.TB, e *core.Endpoint, n int) {
	t.Helper()
	good := endpoint(t, config(t, "good"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := 0; i < n; i++ {
		require.NoError(t, good.Send(ctx, e.LocalAddr(), team(1), "good", payload("good", i, 100)))
	}
	check := newOrderCheck()
	for _, r := range recvN(t, e, n, 20*time.Second) {
		require.Equal(t, good.LocalAddr(), r.ch.Addr, "a message from someone else: %q", r.msg)
		check.add(t, r, 100)
	}
}
