package core

// CongestionControl names the congestion controller new connections use.
// Upstream quic-go offers NewReno (with pacing) and no way to plug in
// another; see docs/PROTOCOL.md.
func CongestionControl() string { return "reno" }
