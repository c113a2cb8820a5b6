package core

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestCongestionControlConfig(t *testing.T) {
	cfg := peerConfig(t, "alice")
	cfg.CongestionControl = "cubic"
	_, err := NewEndpoint(cfg)
	require.ErrorIs(t, err, ErrInvalidConfig)

	cfg.CongestionControl = CongestionReno
	a := newEndpoint(t, cfg)
	b := newTestEndpoint(t, "bob")
	require.NoError(t, a.Send(sendCtx(t), b.LocalAddr(), team(1), "cc", []byte("x")))
	recvN(t, b, 1, 5*time.Second)
	require.Equal(t, CongestionReno, a.Stats().CongestionControl)

	want := CongestionReno
	if CongestionHookAvailable() {
		want = CongestionBBR2
	}
	require.Equal(t, want, b.Stats().CongestionControl, "the default is BBRv2 exactly when the hook is built in")
}
