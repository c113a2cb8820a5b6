//go:build aranya_cc

package main

import (
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/aranya-quic/aranya-quic/core/congestion/bbr2"
)

// -diag replaces core's congestion factory with one that builds the same
// bbr2.Sender but prints its model every interval, for the connections
// whose local address is in diagSenders (the bulk senders). The Sender is
// not goroutine-safe, so the snapshot is taken inside OnPacketAcked, on
// the connection's own goroutine. Diagnostic runs are not results: core no
// longer sees which controller its connections use.
var (
	diagMu      sync.Mutex
	diagSenders = map[string]int{} // local address -> flow index
	diagStart   = time.Now()
)

func diagInstall(every time.Duration) {
	quic.SetCongestionControllerFactory(func(local, _ net.Addr, size int64) quic.CongestionController {
		diagMu.Lock()
		i, ok := diagSenders[local.String()]
		diagMu.Unlock()
		if !ok {
			return bbrAdapter{s: bbr2.NewSender(size)}
		}
		return bbrAdapter{s: bbr2.NewSender(size), trace: &trace{flow: i, every: every}}
	})
}

func diagAdd(addr string, flow int) {
	diagMu.Lock()
	diagSenders[addr] = flow
	diagMu.Unlock()
}

type trace struct {
	flow   int
	every  time.Duration
	last   time.Time
	losses int
	mode   string
}

type bbrAdapter struct {
	s     *bbr2.Sender
	trace *trace
}

func (c bbrAdapter) TimeUntilSend(inFlight int64) int64 { return int64(c.s.TimeUntilSend(inFlight)) }
func (c bbrAdapter) HasPacingBudget(now int64) bool     { return c.s.HasPacingBudget(bbr2.Time(now)) }
func (c bbrAdapter) OnPacketSent(t, inFlight, pn, n int64, retransmittable bool) {
	c.s.OnPacketSent(bbr2.Time(t), inFlight, pn, n, retransmittable)
}
func (c bbrAdapter) CanSend(inFlight int64) bool { return c.s.CanSend(inFlight) }
func (c bbrAdapter) MaybeExitSlowStart()         { c.s.MaybeExitSlowStart() }
func (c bbrAdapter) OnPacketAcked(pn, n, prior, t int64) {
	c.s.OnPacketAcked(pn, n, prior, bbr2.Time(t))
	if tr := c.trace; tr != nil {
		if now := time.Now(); now.Sub(tr.last) >= tr.every || c.s.Mode() != tr.mode {
			tr.mode = c.s.Mode()
			tr.last = now
			fmt.Fprintf(os.Stderr, "diag %6.2fs flow %d losses %3d %s\n", now.Sub(diagStart).Seconds(), tr.flow, tr.losses, c.s.DebugString())
			tr.losses = 0
		}
	}
}
func (c bbrAdapter) OnCongestionEvent(pn, lost, prior int64) {
	if c.trace != nil && lost > 0 {
		c.trace.losses++
	}
	c.s.OnCongestionEvent(pn, lost, prior)
}
func (c bbrAdapter) OnSpuriousLoss(pn int64)        { c.s.OnSpuriousLoss(pn) }
func (c bbrAdapter) OnRetransmissionTimeout(r bool) { c.s.OnRetransmissionTimeout(r) }
func (c bbrAdapter) SetMaxDatagramSize(n int64)     { c.s.SetMaxDatagramSize(n) }
func (c bbrAdapter) InSlowStart() bool              { return c.s.InSlowStart() }
func (c bbrAdapter) InRecovery() bool               { return c.s.InRecovery() }
func (c bbrAdapter) GetCongestionWindow() int64     { return c.s.GetCongestionWindow() }
