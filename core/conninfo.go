package core

import (
	"net/netip"
	"slices"
	"time"
)

// ConnInfo describes one connection, as Connections lists it.
type ConnInfo struct {
	Addr   netip.AddrPort
	PeerID PeerID
	// Dialed says this endpoint dialed the connection; Draining that it is
	// closing gracefully (no new streams).
	Dialed, Draining bool
	// ConnectedAt is when the connection was set up.
	ConnectedAt time.Time
	// Round-trip times: smoothed (RFC 9002), minimum and latest sample.
	SmoothedRTT, MinRTT, LatestRTT time.Duration
	// CongestionWindow and BytesInFlight are in bytes of QUIC packets;
	// BytesInFlightKnown is false when the controller does not report
	// what is in flight (quic-go's NewReno).
	CongestionWindow   uint64
	BytesInFlight      uint64
	BytesInFlightKnown bool
	// QUIC packets sent, received and declared lost.
	PacketsSent, PacketsReceived, PacketsLost uint64
	// Messages and payload bytes each way.
	MessagesSent, BytesSent, MessagesReceived, BytesReceived uint64
	// CongestionControl is the algorithm this connection runs.
	CongestionControl string
}

// Connections lists the connections that are up, ordered by address
// then age: those in the map and those still draining. Connections still
// in their handshake are not listed.
func (e *Endpoint) Connections() []ConnInfo {
	conns, live := e.conns.snapshot()
	out := make([]ConnInfo, 0, len(conns))
	for _, c := range conns {
		if !c.announced.Load() || c.revoked.Load() {
			continue // not up yet, or cut off and on its way out
		}
		qs := c.qc.ConnectionStats()
		info := ConnInfo{
			Addr:              c.addr,
			PeerID:            c.peerID,
			Dialed:            c.dialed,
			Draining:          !live[c] || c.isDraining(),
			ConnectedAt:       c.since,
			SmoothedRTT:       qs.SmoothedRTT,
			MinRTT:            qs.MinRTT,
			LatestRTT:         qs.LatestRTT,
			CongestionWindow:  qs.CongestionWindow,
			PacketsSent:       qs.PacketsSent,
			PacketsReceived:   qs.PacketsReceived,
			PacketsLost:       qs.PacketsLost,
			MessagesSent:      c.traffic.messagesSent.Load(),
			BytesSent:         c.traffic.bytesSent.Load(),
			MessagesReceived:  c.traffic.messagesReceived.Load(),
			BytesReceived:     c.traffic.bytesReceived.Load(),
			CongestionControl: c.cc.algorithm(),
		}
		info.BytesInFlight, info.BytesInFlightKnown = c.cc.bytesInFlight()
		out = append(out, info)
	}
	// A stable order, so that listings taken one after another compare.
	slices.SortFunc(out, func(a, b ConnInfo) int {
		if n := a.Addr.Compare(b.Addr); n != 0 {
			return n
		}
		return a.ConnectedAt.Compare(b.ConnectedAt)
	})
	return out
}
