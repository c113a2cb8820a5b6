package bbr2

import "time"

// packetState is what the delivery-rate sampler remembers about one sent,
// not yet acknowledged or lost packet (draft-cardwell-iccrg-bbr-congestion-
// control, "Delivery Rate Samples"). Everything a rate sample needs is taken
// from here when the packet is acknowledged, so the sender never has to see
// ACK frame boundaries.
type packetState struct {
	sentTime Time
	// delivered and deliveredTime are the connection's delivered byte count
	// and the time it last advanced, as of sending: the start of the
	// interval this packet's ACK will close.
	delivered     int64
	deliveredTime Time
	// firstSentTime is the send time of the packet that was most recently
	// acknowledged when this one was sent; sentTime-firstSentTime is the
	// send-side length of the sampling interval.
	firstSentTime Time
	// txInFlight is the bytes in flight right after this packet was sent
	// (including itself); lost is the connection's lost byte count then.
	// Together they give the loss rate over this packet's flight.
	txInFlight int64
	lost       int64
	size       int64
	// isAppLimited records that the sender was in an application-limited
	// bubble, so a low rate measured by this packet says nothing about the
	// path.
	isAppLimited bool
}

// rateSample is the result of acknowledging (or losing) one packet.
type rateSample struct {
	// deliveryRate is bytes per second; 0 if the sample is invalid.
	deliveryRate float64
	isAppLimited bool
	// delivered is the bytes delivered over the sampling interval.
	delivered int64
	// priorDelivered is the delivered count when the packet was sent.
	priorDelivered int64
	txInFlight     int64
	// lost is the bytes declared lost while the packet was in flight.
	lost       int64
	newlyAcked int64
	// rtt is eventTime-sentTime of the packet, or -1 if unknown.
	rtt time.Duration
	// known is false for an ACK of a packet the sampler has no state for
	// (for instance one sent in another packet-number space with a colliding
	// number); such ACKs count as delivered but produce no model input.
	known bool
}

// staleAfter bounds how long per-packet state is kept for packets that are
// never reported acknowledged or lost. quic-go does not report lost MTU
// probes, nor packets of the Initial and Handshake spaces it drops when the
// handshake completes, so without this the map would grow by those packets.
// A packet still outstanding after this long was declared lost by quic-go's
// loss detection long ago.
func staleAfter(srtt time.Duration) time.Duration {
	return max(2*time.Second, 8*srtt)
}
