//go:build aranya_cc

package core

import (
	"net"

	"github.com/quic-go/quic-go"

	"github.com/aranya-quic/aranya-quic/core/congestion/bbr2"
)

// This file builds only against the quic-go copy that qgpatch made, which
// has SetCongestionControllerFactory (make lib does this).
const congestionHookAvailable = true

func init() {
	quic.SetCongestionControllerFactory(newController)
}

var (
	usedBBR2 = CongestionBBR2
	usedReno = CongestionReno
)

func newController(local, remote net.Addr, initialMaxDatagramSize int64) quic.CongestionController {
	v, ok := ccChoices.Load(local.String())
	if !ok {
		return nil // not one of our endpoints' sockets: quic-go's default
	}
	st := v.(*ccState)
	if st.want != CongestionBBR2 {
		st.used.Store(&usedReno)
		return nil
	}
	st.used.Store(&usedBBR2)
	return bbr2Controller{s: bbr2.NewSender(initialMaxDatagramSize), rec: st.record(remote, CongestionBBR2)}
}

// bbr2Controller converts between quic-go's hook types and bbr2's, and
// tells the connection's record what is in flight.
type bbr2Controller struct {
	s   *bbr2.Sender
	rec *ccRecord
}

func (c bbr2Controller) TimeUntilSend(inFlight int64) int64 {
	return int64(c.s.TimeUntilSend(inFlight))
}
func (c bbr2Controller) HasPacingBudget(now int64) bool { return c.s.HasPacingBudget(bbr2.Time(now)) }

// OnPacketSent gets the bytes in flight with the packet counted.
func (c bbr2Controller) OnPacketSent(t, inFlight, pn, n int64, retransmittable bool) {
	c.rec.inFlight.Store(inFlight)
	c.s.OnPacketSent(bbr2.Time(t), inFlight, pn, n, retransmittable)
}

// CanSend is asked with the current bytes in flight whenever the
// connection may send, also after acknowledgements shrank it.
func (c bbr2Controller) CanSend(inFlight int64) bool {
	c.rec.inFlight.Store(inFlight)
	return c.s.CanSend(inFlight)
}
func (c bbr2Controller) MaybeExitSlowStart() { c.s.MaybeExitSlowStart() }
func (c bbr2Controller) OnPacketAcked(pn, n, prior, t int64) {
	c.s.OnPacketAcked(pn, n, prior, bbr2.Time(t))
}
func (c bbr2Controller) OnCongestionEvent(pn, lost, prior int64) {
	c.s.OnCongestionEvent(pn, lost, prior)
}
func (c bbr2Controller) OnSpuriousLoss(pn int64)        { c.s.OnSpuriousLoss(pn) }
func (c bbr2Controller) OnRetransmissionTimeout(r bool) { c.s.OnRetransmissionTimeout(r) }
func (c bbr2Controller) SetMaxDatagramSize(n int64)     { c.s.SetMaxDatagramSize(n) }
func (c bbr2Controller) InSlowStart() bool              { return c.s.InSlowStart() }
func (c bbr2Controller) InRecovery() bool               { return c.s.InRecovery() }
func (c bbr2Controller) GetCongestionWindow() int64     { return c.s.GetCongestionWindow() }
