// Package fault holds the fault-injection, hostile-peer, trust and load
// tests of the engine. They use only the public core API (plus raw quic-go
// clients for the hostile peers) and the tests/netsim lossy proxy.
package fault

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aranya-quic/aranya-quic/core"
	"github.com/aranya-quic/aranya-quic/core/certgen"
	"github.com/aranya-quic/aranya-quic/tests/netsim"
)

// pki is the CA every well-behaved peer of a test run trusts.
var pki = sync.OnceValue(func() *certgen.CA {
	ca, err := certgen.NewCA("fault test CA")
	if err != nil {
		panic(err)
	}
	return ca
})

func issue(t testing.TB, name string) *certgen.Peer {
	t.Helper()
	p, err := pki().Issue(name, certgen.PeerOptions{})
	require.NoError(t, err)
	return p
}

func config(t testing.TB, name string) core.Config {
	t.Helper()
	p := issue(t, name)
	return core.Config{
		BindAddr:     "127.0.0.1:0",
		CertPEM:      p.CertPEM,
		KeyPEM:       p.KeyPEM,
		CAPEM:        pki().CertPEM,
		IdleTimeout:  10 * time.Second,
		DrainTimeout: 10 * time.Second,
		SendTimeout:  10 * time.Second,
	}
}

func endpoint(t testing.TB, cfg core.Config) *core.Endpoint {
	t.Helper()
	e, err := core.NewEndpoint(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { e.Close() })
	return e
}

func team(b byte) core.TeamID {
	var id core.TeamID
	for i := range id {
		id[i] = b
	}
	return id
}

func proxy(t testing.TB, seed uint64, l netsim.Link) *netsim.Proxy {
	t.Helper()
	p := netsim.New(seed, l)
	t.Cleanup(func() { p.Close() })
	return p
}

type received struct {
	ch  core.Channel
	msg []byte
}

// recvN receives exactly n messages or fails the test after timeout.
func recvN(t testing.TB, e *core.Endpoint, n int, timeout time.Duration) []received {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out := make([]received, 0, n)
	buf := make([]byte, 1<<20)
	for len(out) < n {
		ch, m, err := e.ReceiveContext(ctx, buf)
		require.NoError(t, err, "after %d of %d messages", len(out), n)
		out = append(out, received{ch, append([]byte(nil), buf[:m]...)})
	}
	return out
}

// requireQuiet fails if a message arrives within d.
func requireQuiet(t testing.TB, e *core.Endpoint, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	buf := make([]byte, 1<<20)
	ch, n, err := e.ReceiveContext(ctx, buf)
	require.ErrorIs(t, err, core.ErrTimeout, "unexpected message %+v %q", ch, buf[:n])
}

// payload is "label seq" padded with filler to size bytes (at least the
// text), so a message's content names its channel and position.
func payload(label string, seq, size int) []byte {
	s := fmt.Sprintf("%s %d ", label, seq)
	b := []byte(s)
	for len(b) < size {
		b = append(b, byte('a'+len(b)%26))
	}
	return b
}

func parsePayload(t testing.TB, b []byte) (string, int) {
	t.Helper()
	f := strings.SplitN(string(b), " ", 3)
	require.Len(t, f, 3, "payload %q", b)
	seq, err := strconv.Atoi(f[1])
	require.NoError(t, err, "payload %q", b)
	return f[0], seq
}

// orderCheck tracks per-label sequence numbers: every message must be the
// next one of its label (nothing lost before it, no duplicate), with intact
// filler.
type orderCheck struct {
	next map[string]int
}

func newOrderCheck() *orderCheck { return &orderCheck{next: map[string]int{}} }

func (o *orderCheck) add(t testing.TB, r received, size int) {
	t.Helper()
	label, seq := parsePayload(t, r.msg)
	require.Equal(t, r.ch.Label, label, "message %q arrived on channel %q", r.msg, r.ch.Label)
	require.Equal(t, o.next[label], seq, "channel %s: out of order, lost or duplicated", label)
	require.Equal(t, string(payload(label, seq, size)), string(r.msg), "content corrupted")
	o.next[label]++
}

// heapInUse is the live heap after a GC.
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

func isSendFailure(err error) bool {
	return errors.Is(err, core.ErrTimeout) || errors.Is(err, core.ErrConnection)
}

// sendWatch runs send and fails the test if it has not returned after
// limit: a send must give up by its timeout, never hang.
func sendWatch(t testing.TB, limit time.Duration, send func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- send() }()
	select {
	case err := <-done:
		return err
	case <-time.After(limit):
		t.Fatalf("Send still blocked after %v", limit)
		return nil
	}
}

var _ = netip.AddrPort{}

// soakRounds is how often a stress test repeats itself: normal in make
// test, soak under make soak, which sets ARANYA_QUIC_SOAK=1.
func soakRounds(normal, soak int) int {
	if os.Getenv("ARANYA_QUIC_SOAK") != "" {
		return soak
	}
	return normal
}
