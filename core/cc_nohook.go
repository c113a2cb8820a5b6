//go:build !aranya_cc

package core

// Without the aranya_cc build tag quic-go is the upstream module, which
// has no congestion hook.
const congestionHookAvailable = false
