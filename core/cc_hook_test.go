//go:build aranya_cc

package core

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Runs only in the patched build (make test-bbr2 / make lib's workspace):
// a connection made there must really be driven by BBRv2.
func TestConnectionsUseBBR2ThroughTheHook(t *testing.T) {
	require.True(t, CongestionHookAvailable())
	a := newTestEndpoint(t, "alice")
	b := newTestEndpoint(t, "bob")
	require.Equal(t, CongestionBBR2, a.cfg.CongestionControl)
	for i := 0; i < 100; i++ {
		require.NoError(t, a.Send(sendCtx(t), b.LocalAddr(), team(1), "bbr", make([]byte, 32<<10)))
	}
	recvN(t, b, 100, 10*time.Second)
	require.NotNil(t, a.cc.used.Load(), "the hook never built a controller for our connection")
	require.Equal(t, CongestionBBR2, a.Stats().CongestionControl)
	require.Equal(t, CongestionBBR2, b.Stats().CongestionControl)
}
