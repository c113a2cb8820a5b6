package core

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aranya-quic/aranya-quic/core/certgen"
)

// testPKI is one CA shared by the tests of a package run; issuing is cheap.
var testPKI = sync.OnceValue(func() *certgen.CA {
	ca, err := certgen.NewCA("test CA")
	if err != nil {
		panic(err)
	}
	return ca
})

func peerConfig(t testing.TB, name string) Config {
	t.Helper()
	p, err := testPKI().Issue(name, certgen.PeerOptions{})
	require.NoError(t, err)
	return Config{
		BindAddr:     "127.0.0.1:0",
		CertPEM:      p.CertPEM,
		KeyPEM:       p.KeyPEM,
		CAPEM:        testPKI().CertPEM,
		IdleTimeout:  5 * time.Second,
		DrainTimeout: 3 * time.Second,
		SendTimeout:  5 * time.Second,
	}
}

func newEndpoint(t testing.TB, cfg Config) *Endpoint {
	t.Helper()
	e, err := NewEndpoint(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { e.Close() })
	return e
}

func newTestEndpoint(t testing.TB, name string) *Endpoint {
	t.Helper()
	return newEndpoint(t, peerConfig(t, name))
}

func team(b byte) TeamID {
	var id TeamID
	for i := range id {
		id[i] = b
	}
	return id
}

type received struct {
	ch  Channel
	msg []byte
}

// recvN receives n messages or fails the test after timeout.
func recvN(t testing.TB, e *Endpoint, n int, timeout time.Duration) []received {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out := make([]received, 0, n)
	buf := make([]byte, 4<<20)
	for len(out) < n {
		ch, m, err := e.ReceiveContext(ctx, buf)
		require.NoError(t, err, "after %d of %d messages", len(out), n)
		out = append(out, received{ch, append([]byte(nil), buf[:m]...)})
	}
	return out
}

func sendCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}
