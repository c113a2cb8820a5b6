//go:build !aranya_cc

package core

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestBBR2NeedsTheHook(t *testing.T) {
	require.False(t, CongestionHookAvailable())
	cfg := peerConfig(t, "alice")
	cfg.CongestionControl = CongestionBBR2
	_, err := NewEndpoint(cfg)
	require.ErrorIs(t, err, ErrInvalidConfig)
}
