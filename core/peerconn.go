package core

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/aranya-quic/aranya-quic/core/wire"
)

// errDraining means the connection stopped opening streams; the caller
// retries on a fresh connection.
var errDraining = errors.New("connection draining")

// readBufferSize is the read buffer of each incoming channel stream: big
// enough that small messages cost no system of their own, small enough
// that a peer's many idle streams stay cheap.
const readBufferSize = 4096

// peerConn is one QUIC connection to a peer with its control stream, the
// channel streams we opened on it and the readers of the streams the peer
// opened.
type peerConn struct {
	ep     *Endpoint
	qc     *quic.Conn
	addr   netip.AddrPort
	dialed bool // we dialed it
	peerID PeerID

	// peerInstance and peerMaxMessage come from the peer's HELLO: its
	// random instance id and the largest message it accepts. Valid once
	// ready is closed without error.
	peerInstance   [wire.InstanceIDLen]byte
	peerMaxMessage uint64
	ready          chan struct{}
	readyErr       error

	lastUse atomic.Uint64

	mu      sync.Mutex
	streams map[chanKey]*sendStream
	// ending holds streams that left streams but have not ended yet
	// (retired for the peer's stream limit, or broken): a drain waits for
	// them too, or it would close the connection under them.
	ending   map[*sendStream]struct{}
	draining bool

	ctrlMu  sync.Mutex
	ctrlOut *quic.SendStream

	peerDone  chan struct{} // closed when the peer's DONE arrives
	drainOnce sync.Once
	drained   chan struct{} // closed when a drain finished
	graceful  atomic.Bool   // closed by a completed drain

	// unconfirmed counts the accepted messages given up on this
	// connection (streams that ended without the peer's full receipt);
	// a drain reports it to whoever waits for the close.
	unconfirmed atomic.Uint64
	// announced is set once the connection entered the map and was
	// reported up; its end is then reported too.
	announced atomic.Bool
	// gone is closed once the end of the connection was handled.
	gone chan struct{}

	// peerCerts is the chain the peer presented, re-checked when the trust
	// set changes; revoked is set (under mu) when a new trust set no longer
	// trusts it. readers (under mu) holds the gates of the streams the peer
	// opened, which revocations close.
	peerCerts []*x509.Certificate
	revoked   atomic.Bool
	readers   map[*readGate]struct{}
	// peerAuthorizes comes from the peer's HELLO: it authorizes channels
	// by team, so a new stream waits for its verdict. Valid once ready.
	peerAuthorizes bool

	// since is when the connection was set up; traffic counts its
	// messages and payload bytes each way, and cc is the congestion
	// controller the hook made for it (nil: quic-go's own).
	since   time.Time
	traffic connTraffic
	cc      *ccRecord
}

// connTraffic counts one connection's messages and payload bytes.
type connTraffic struct {
	messagesSent, bytesSent         atomic.Uint64
	messagesReceived, bytesReceived atomic.Uint64
}

func (c *peerConn) peerAddr() netip.AddrPort { return c.addr }
func (c *peerConn) lastUsed() uint64         { return c.lastUse.Load() }

func newPeerConn(ep *Endpoint, qc *quic.Conn, addr netip.AddrPort, dialed bool) *peerConn {
	c := &peerConn{
		ep:       ep,
		qc:       qc,
		addr:     addr,
		dialed:   dialed,
		ready:    make(chan struct{}),
		streams:  make(map[chanKey]*sendStream),
		ending:   make(map[*sendStream]struct{}),
		peerDone: make(chan struct{}),
		drained:  make(chan struct{}),
		gone:     make(chan struct{}),
		readers:  make(map[*readGate]struct{}),
		since:    time.Now(),
	}
	if certs := qc.ConnectionState().TLS.PeerCertificates; len(certs) > 0 {
		c.peerID = sha256.Sum256(certs[0].Raw)
		c.peerCerts = certs
	}
	c.cc = ep.cc.claim(qc.RemoteAddr())
	c.touch()
	return c
}

func (c *peerConn) touch() { c.lastUse.Store(c.ep.clock.Add(1)) }

func (c *peerConn) alive() bool { return c.qc.Context().Err() == nil }

// start opens our control stream, says HELLO and starts the goroutines
// that serve the connection. ready closes when the peer's HELLO arrived
// (or the connection failed first).
func (c *peerConn) start() {
	go c.serveControl()
	go c.acceptStreams()
	go func() {
		<-c.qc.Context().Done()
		c.ep.connGone(c)
	}()
}

func (c *peerConn) serveControl() {
	h := wire.Hello{Instance: c.ep.instance, MaxMessageSize: c.ep.cfg.MaxMessageSize}
	if c.ep.auth.enabled {
		h.Flags |= wire.HelloAuthorizesTeams
	}
	hello := wire.AppendControl(nil, wire.ControlHello, wire.AppendHelloFields(nil, h))
	out, err := c.qc.OpenUniStream()
	if err == nil {
		c.ctrlMu.Lock()
		c.ctrlOut = out
		_, err = out.Write(hello)
		c.ctrlMu.Unlock()
	}
	if err != nil {
		c.setReady(c.classify(err))
		return
	}
	ctx, cancel := context.WithTimeout(c.qc.Context(), c.ep.cfg.HandshakeTimeout)
	in, err := c.qc.AcceptUniStream(ctx)
	cancel()
	if err != nil {
		if c.alive() {
			c.qc.CloseWithError(quic.ApplicationErrorCode(wire.ConnCodeHelloTimeout), "no hello")
		}
		c.setReady(c.classify(err))
		return
	}
	r := bufio.NewReaderSize(in, 256)
	m, err := wire.ReadControl(r)
	if err == nil && m.Type != wire.ControlHello {
		err = fmt.Errorf("%w: first control message is type %d, not HELLO", wire.ErrControl, m.Type)
	}
	if err == nil {
		var h wire.Hello
		h, err = wire.ParseHelloFields(m.Payload)
		c.peerInstance, c.peerMaxMessage = h.Instance, h.MaxMessageSize
		c.peerAuthorizes = h.Flags&wire.HelloAuthorizesTeams != 0
	}
	if err != nil {
		c.qc.CloseWithError(quic.ApplicationErrorCode(wire.ConnCodeControlError), "bad hello")
		c.setReady(fmt.Errorf("%w: peer sent no valid hello: %w", ErrConnection, err))
		return
	}
	c.setReady(nil)
	for {
		m, err := wire.ReadControl(r)
		if err != nil {
			if !errors.Is(err, io.EOF) && c.alive() {
				c.qc.CloseWithError(quic.ApplicationErrorCode(wire.ConnCodeControlError), "bad control message")
			}
			return
		}
		switch m.Type {
		case wire.ControlGoAway:
			c.drain(false)
		case wire.ControlDone:
			select {
			case <-c.peerDone:
			default:
				close(c.peerDone)
			}
		}
	}
}

func (c *peerConn) setReady(err error) {
	c.readyErr = err
	close(c.ready)
}

// classify maps a quic-go error seen while setting up to ours.
func (c *peerConn) classify(err error) error {
	if cause := context.Cause(c.qc.Context()); cause != nil && !errors.Is(cause, context.Canceled) {
		err = cause
	}
	return classifyConnError(err)
}

func classifyConnError(err error) error {
	var te *quic.TransportError
	if errors.As(err, &te) && te.ErrorCode.IsCryptoError() {
		return fmt.Errorf("%w: %w", ErrTLS, err)
	}
	if errors.Is(err, errUntrustedPeer) {
		return fmt.Errorf("%w: %w", ErrTLS, err)
	}
	var ae *quic.ApplicationError
	if errors.As(err, &ae) && uint64(ae.ErrorCode) == wire.ConnCodeNotAuthorized {
		return fmt.Errorf("%w: %w", ErrTLS, err)
	}
	return fmt.Errorf("%w: %w", ErrConnection, err)
}

func (c *peerConn) sendControl(typ uint64) {
	c.ctrlMu.Lock()
	defer c.ctrlMu.Unlock()
	if c.ctrlOut != nil {
		_, _ = c.ctrlOut.Write(wire.AppendControl(nil, typ, nil))
	}
}

// stream returns the send stream for key, opening it if needed. A new
// stream first takes its turn in the channel's order: it waits until the
// channel's previous stream (on this or an older connection) finished.
func (c *peerConn) stream(lctx *lazyContext, key chanKey, header []byte) (*sendStream, error) {
	for {
		c.mu.Lock()
		if s := c.streams[key]; s != nil {
			c.mu.Unlock()
			return s, nil
		}
		if c.draining {
			c.mu.Unlock()
			return nil, errDraining
		}
		// The order registry keeps the key: it must not alias the
		// caller's memory (the C API passes the label in place).
		key.label = strings.Clone(key.label)
		link, prev := c.ep.order.claim(chanRef{addr: c.addr, key: key})
		if prev != nil {
			c.mu.Unlock()
			if err := c.waitTurn(lctx, prev); err != nil {
				return nil, err
			}
			continue
		}
		str, err := c.qc.OpenStream()
		if err == nil {
			s := newSendStream(key, str, header, c.ep.cfg.SendBufferBytes, &c.ep.stats, link, c.peerAuthorizes)
			s.onBroken = c.dropStream
			c.streams[key] = s
			c.ep.stats.openStreams.Add(1)
			c.mu.Unlock()
			return s, nil
		}
		link.finish()                        // nothing opened: give the turn back
		var se *quic.StreamLimitReachedError // quic-go returns a pointer
		if !errors.As(err, &se) {
			c.mu.Unlock()
			return nil, fmt.Errorf("%w: %w", errDraining, err)
		}
		// The peer's stream limit: channels are unlimited, streams are
		// not, so the least recently used channel gives its stream back
		// (it reopens one on its next message, after this one's receipt).
		// Several openers may be waiting for the credit that frees, so
		// each waits only a while before it retires another stream and
		// tries again.
		c.retireIdleLocked()
		c.mu.Unlock()
		if err := c.waitStreamCredit(lctx); err != nil {
			return nil, err
		}
	}
}

// waitTurn waits until the channel's previous stream finished.
func (c *peerConn) waitTurn(lctx *lazyContext, prev *orderLink) error {
	ctx := lctx.get()
	select {
	case <-prev.done:
		return nil
	case <-c.qc.Context().Done():
		return fmt.Errorf("%w: %w", errDraining, context.Cause(c.qc.Context()))
	case <-ctx.Done():
		return fmt.Errorf("%w: waiting for the channel's previous stream to be confirmed: %w", ErrTimeout, ctx.Err())
	}
}

// streamCreditPoll is how long an opener waits for stream credit before
// retiring another stream.
const streamCreditPoll = 100 * time.Millisecond

// waitStreamCredit waits until the peer may have granted stream credit.
// It opens no stream itself (an opened stream would have to be registered
// under c.mu), so it only waits on the connection's signal or a timer.
func (c *peerConn) waitStreamCredit(lctx *lazyContext) error {
	ctx := lctx.get()
	t := time.NewTimer(streamCreditPoll)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-c.qc.Context().Done():
		return fmt.Errorf("%w: %w", errDraining, context.Cause(c.qc.Context()))
	case <-ctx.Done():
		return fmt.Errorf("%w: waiting for the peer's stream credit: %w", ErrTimeout, ctx.Err())
	}
}

// retireIdleLocked retires the least recently used stream, preferring one
// with nothing buffered; retiring flushes it first and its channel's next
// stream waits for its end, so nothing is lost and order holds. c.mu is
// held.
func (c *peerConn) retireIdleLocked() {
	var victim *sendStream
	victimIdle := false
	for _, s := range c.streams {
		idle := s.idle()
		better := victim == nil || (idle && !victimIdle) ||
			(idle == victimIdle && s.lastUse.Load() < victim.lastUse.Load())
		if better {
			victim, victimIdle = s, idle
		}
	}
	if victim == nil {
		return
	}
	delete(c.streams, victim.key)
	c.ending[victim] = struct{}{}
	go func() {
		ctx, cancel := context.WithTimeout(c.qc.Context(), c.ep.cfg.DrainTimeout)
		defer cancel()
		if err := victim.retire(ctx); err != nil {
			c.ep.logf("retiring idle stream to %s: %v", c.addr, err)
		}
		c.endStream(victim, "retiring an idle stream")
	}()
}

// endStream finishes s's turn in its channel's order and accounts for
// what the peer did not confirm. Every path that ends a stream calls it;
// only the first call counts.
func (c *peerConn) endStream(s *sendStream, why string) {
	n, ok := s.end()
	if !ok {
		return
	}
	c.mu.Lock()
	delete(c.ending, s)
	c.mu.Unlock()
	c.ep.stats.openStreams.Add(-1)
	if n > 0 {
		c.unconfirmed.Add(n)
		c.ep.stats.messagesUnconfirmed.Add(n)
		c.ep.warnf("%d accepted message(s) to %s not confirmed by the peer (%s)", n, c.addr, why)
	}
}

func (c *peerConn) acceptStreams() {
	select {
	case <-c.ready:
	case <-c.qc.Context().Done():
		return
	}
	if c.readyErr != nil {
		return
	}
	for {
		str, err := c.qc.AcceptStream(context.Background())
		if err != nil {
			return
		}
		go c.readStream(str)
	}
}

// readStream reads one channel stream of the peer into the receive queue.
// It confirms what it queued with receipt counts on its own direction of
// the stream: before it waits for room in the queue (so a sender whose
// close times out on a slow reader learns exactly what was queued), and
// before its FIN, which follows the sender's FIN.
func (c *peerConn) readStream(str *quic.Stream) {
	c.ep.stats.openStreams.Add(1)
	defer c.ep.stats.openStreams.Add(-1)
	// Unless the stream ended cleanly (our FIN sent), both directions are
	// cancelled on the way out: quic-go frees a stream's slot (the peer's
	// credit for a new one) only once both directions are done, and a
	// sender that reset its side leaves ours to us.
	finished := false
	defer func() {
		if !finished {
			str.CancelRead(quic.StreamErrorCode(wire.StreamCodeShuttingDown))
			str.CancelWrite(quic.StreamErrorCode(wire.StreamCodeShuttingDown))
		}
	}()
	r := bufio.NewReaderSize(str, readBufferSize)
	// A header that never comes would hold a stream (and a reader) until
	// the connection idles out.
	_ = str.SetReadDeadline(time.Now().Add(c.ep.cfg.HandshakeTimeout))
	hdr, err := wire.ReadHeader(r)
	_ = str.SetReadDeadline(time.Time{})
	if errors.Is(err, io.EOF) {
		_ = str.Close()
		finished = true
		return
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		c.resetStream(str, wire.StreamCodeHeaderTimeout, fmt.Errorf("no channel header within %v", c.ep.cfg.HandshakeTimeout))
		return
	}
	if err != nil {
		c.rejectStream(str, err)
		return
	}
	ch := Channel{Addr: c.addr, Kind: hdr.Kind, PeerID: c.peerID}
	key := chanKey{kind: hdr.Kind}
	switch hdr.Kind {
	case KindChannel:
		ch.TeamID, ch.Label = hdr.Channel.TeamID, hdr.Channel.Label
		key.teamID, key.label = hdr.Channel.TeamID, hdr.Channel.Label
	case KindSync:
		ch.SyncType = hdr.Sync.SyncType
		key.syncType = hdr.Sync.SyncType
	}
	// The stream's context ends when the sender stops our direction
	// (STOP_SENDING: it gave up on the stream and counted what we had not
	// confirmed), when the connection ends, or when a newer stream of the
	// channel supersedes this one. From then on nothing more of this
	// stream may be queued: the sender has moved on, and the newer
	// stream's messages must not be overtaken.
	ctx, cancel := context.WithCancel(str.Context())
	defer cancel()
	stop := func() {
		cancel()
		str.CancelRead(quic.StreamErrorCode(wire.StreamCodeShuttingDown)) // wakes a blocked read
	}
	// The gate is registered before the authorization check, so a
	// revocation either finds it or is seen by the check.
	gate := newReadGate(c.peerID, hdr.Kind, ch.TeamID, func(code uint64) {
		cancel()
		str.CancelRead(quic.StreamErrorCode(code))
		str.CancelWrite(quic.StreamErrorCode(code))
	})
	if !c.addGate(gate) {
		return // the peer was revoked; its connection is closing
	}
	defer c.removeGate(gate)
	if !c.authorize(str, hdr) {
		return
	}
	src := &inbound{ch: ch, gate: gate, conn: c}
	// The receiver keeps the channel's order too: a channel's stream is
	// read only after the reader of its previous stream has stopped. The
	// sender opens a newer stream only once it is done with the older one
	// (it was read to its end, or the sender gave up on it), so the older
	// reader is told to stop rather than waited for: it may still be
	// blocked on a stream whose reset, or whose connection's close, has
	// not arrived yet.
	turn, err := c.ep.inOrder.await(ctx, chanRef{addr: c.addr, key: key}, stop)
	if err != nil {
		return
	}
	defer turn.finish()
	rc := receipts{str: str}
	maxMsg := c.ep.cfg.MaxMessageSize
	for {
		n, err := wire.ReadFrameLen(r, maxMsg)
		if errors.Is(err, io.EOF) {
			// Everything read: the last count and our FIN are the
			// sender's receipt.
			rc.confirm()
			_ = str.Close()
			finished = true
			return
		}
		if err != nil {
			finished = c.frameFailed(str, &rc, err)
			return
		}
		if d := c.ep.delivery; d != nil {
			ok, err := c.deliverFrame(ctx, d, src, r, n)
			if err != nil {
				finished = c.frameFailed(str, &rc, err)
				return
			}
			if !ok {
				return
			}
			c.countReceived(n)
		} else if !c.queueFrame(ctx, src, r, n, &rc, str, &finished) {
			return // queued messages are counted by the queue, as they are added
		}
		rc.queued++
		c.touch()
		if r.Buffered() == 0 && rc.queued-rc.confirmed >= receiptEvery {
			// About to wait for the network with a good number taken:
			// tell the sender, so that a connection that dies later
			// leaves it counting fewer than receiptEvery delivered
			// messages as unconfirmed.
			rc.confirmSoon()
		}
	}
}

// queueFrame reads a frame's payload of n bytes and queues it, waiting
// for room. False means the stream's reading ends (finished says whether
// it ended cleanly).
func (c *peerConn) queueFrame(ctx context.Context, src *inbound, r *bufio.Reader, n uint64, rc *receipts, str *quic.Stream, finished *bool) bool {
	p, err := c.ep.readPayload(r, n)
	if err != nil {
		*finished = c.frameFailed(str, rc, err)
		return false
	}
	if ctx.Err() != nil {
		putPayload(p)
		return false
	}
	m := message{src: src, payload: p}
	if !c.ep.queue.tryPush(m) {
		rc.confirm() // about to wait: tell the sender what is queued
		if err := c.ep.queue.push(ctx, m); err != nil {
			return false
		}
	}
	return true
}

// countReceived counts a message of n bytes delivered on c.
func (c *peerConn) countReceived(n uint64) {
	c.ep.stats.messagesReceived.Add(1)
	c.ep.stats.bytesReceived.Add(n)
	c.traffic.messagesReceived.Add(1)
	c.traffic.bytesReceived.Add(n)
}

// authorize applies team authorization to a new incoming stream: a
// stream the peer may not open is reset with NOT_AUTHORIZED; an accepted
// one gets its verdict, a receipt count of 0, at once, which the sender
// waits for before its first message. False: the stream was refused.
func (c *peerConn) authorize(str *quic.Stream, hdr *wire.QuicMessage) bool {
	auth := c.ep.auth
	if !auth.enabled {
		return true
	}
	var team TeamID
	if hdr.Kind == KindChannel {
		team = hdr.Channel.TeamID
	}
	if !auth.allows(c.peerID, hdr.Kind, team) {
		// Counted before the refusal leaves, so that a sender that hears
		// of it finds it counted.
		c.ep.stats.streamsRefused.Add(1)
		str.CancelRead(quic.StreamErrorCode(wire.StreamCodeNotAuthorized))
		str.CancelWrite(quic.StreamErrorCode(wire.StreamCodeNotAuthorized))
		if hdr.Kind == KindSync {
			c.ep.warnf("refused a sync stream from %s (peer id %s): the peer is allowed on no team", c.addr, logPeerID(c.peerID))
		} else {
			c.ep.warnf("refused a channel stream from %s (peer id %s): the peer is not allowed on team %x", c.addr, logPeerID(c.peerID), team[:4])
		}
		return false
	}
	_, err := str.Write(wire.AppendAck(nil, 0))
	return err == nil
}

// receipts tracks what a stream reader has queued and confirmed.
type receipts struct {
	str       *quic.Stream
	queued    uint64
	confirmed uint64
	buf       [8]byte
}

// confirm sends the count of queued messages if it moved. A peer that does
// not read its receipts (a hostile one) can at most make this write wait
// for flow control on its own stream.
func (rc *receipts) confirm() {
	if rc.queued == rc.confirmed {
		return
	}
	if _, err := rc.str.Write(wire.AppendAck(rc.buf[:0], rc.queued)); err == nil {
		rc.confirmed = rc.queued
	}
}

// receiptEvery is how many messages a stream's reader takes before it
// sends a receipt between bursts. Not every burst: on a ping-pong each
// message is a burst, and a receipt per message costs a packet each way.
const receiptEvery = 32

// confirmSoon is confirm for the receipts between bursts: it hands the
// count to quic-go without waiting for it to be sent (a blocking write
// would hold the reader until the packet left, on every message of a
// ping-pong). When the count cannot be queued at once it is left for the
// next receipt.
func (rc *receipts) confirmSoon() {
	if rc.queued == rc.confirmed {
		return
	}
	if err := rc.str.TryWriteAll(wire.AppendAck(rc.buf[:0], rc.queued)); err == nil {
		rc.confirmed = rc.queued
	}
}

// frameFailed handles a read error inside the frames: a protocol
// violation (an oversize or truncated frame) stops the stream, but first
// the sender gets the count of what was queued and our FIN, so it knows
// exactly which of its accepted messages were not delivered. A stream the
// peer reset, or a connection that died, needs nothing more.
// It reports whether it finished the stream itself.
func (c *peerConn) frameFailed(str *quic.Stream, rc *receipts, err error) bool {
	var se *quic.StreamError
	if errors.As(err, &se) || !c.alive() || !isProtocolError(err) {
		return false
	}
	rc.confirm()
	_ = str.Close()
	str.CancelRead(quic.StreamErrorCode(wire.StreamCodeFor(err)))
	c.ep.stats.streamsReset.Add(1)
	c.ep.warnf("stopped reading a stream from %s after %d message(s): %v", c.addr, rc.queued, err)
	return true
}

func isProtocolError(err error) bool {
	for _, proto := range []error{wire.ErrFrameTooLarge, wire.ErrTruncated, wire.ErrMalformedHeader, wire.ErrUnknownKind, wire.ErrInvalidLabel, wire.ErrHeaderTooLarge} {
		if errors.Is(err, proto) {
			return true
		}
	}
	return false
}

// rejectStream resets a stream whose header is bad.
func (c *peerConn) rejectStream(str *quic.Stream, err error) {
	var se *quic.StreamError
	if errors.As(err, &se) || !c.alive() {
		return
	}
	c.resetStream(str, wire.StreamCodeFor(err), err)
}

func (c *peerConn) resetStream(str *quic.Stream, code uint64, err error) {
	str.CancelRead(quic.StreamErrorCode(code))
	str.CancelWrite(quic.StreamErrorCode(code))
	c.ep.stats.streamsReset.Add(1)
	c.ep.warnf("reset stream %d from %s: %v", str.StreamID(), c.addr, err)
}

// drain closes the connection gracefully: no new streams, everything
// queued is written and read by the peer, the peer does the same, then the
// connection closes with code 0. It runs once, in the background; wait on
// c.drained. local says whether we started it (rather than the peer's
// GOAWAY).
func (c *peerConn) drain(local bool) {
	c.drainOnce.Do(func() { go c.runDrain() })
}

func (c *peerConn) runDrain() {
	defer close(c.drained)
	c.mu.Lock()
	c.draining = true
	streams := make([]*sendStream, 0, len(c.streams))
	for _, s := range c.streams {
		streams = append(streams, s)
	}
	ending := make([]*sendStream, 0, len(c.ending))
	for s := range c.ending {
		ending = append(ending, s)
	}
	c.mu.Unlock()
	c.ep.conns.remove(c)

	ctx, cancel := context.WithTimeout(c.qc.Context(), c.ep.cfg.DrainTimeout)
	defer cancel()

	select {
	case <-c.ready:
	case <-ctx.Done():
	}
	c.sendControl(wire.ControlGoAway)

	var wg sync.WaitGroup
	var failed atomic.Bool
	for _, s := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.retire(ctx); err != nil {
				failed.Store(true)
			}
			c.endStream(s, "draining the connection")
		}()
	}
	for _, s := range ending {
		// Already being retired or settled by their own goroutine, with
		// their own deadline: wait for them within ours.
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-s.link.done:
			case <-ctx.Done():
				s.abandon()
				<-s.link.done
			}
			if s.unconfirmed() > 0 {
				failed.Store(true)
			}
		}()
	}
	wg.Wait()
	if !failed.Load() && ctx.Err() == nil {
		c.sendControl(wire.ControlDone)
	}
	select {
	case <-c.peerDone:
	case <-ctx.Done():
	}
	code, reason := wire.ConnCodeGraceful, "bye"
	if failed.Load() || ctx.Err() != nil {
		code, reason = wire.ConnCodeDrainTimeout, "drain incomplete"
	} else {
		c.graceful.Store(true)
	}
	_ = c.qc.CloseWithError(quic.ApplicationErrorCode(code), reason)
}

// failStreams gives up on our streams after the connection died; what the
// peer had not confirmed is counted (delivery is at most once when a
// connection dies).
func (c *peerConn) failStreams() {
	c.mu.Lock()
	c.draining = true
	streams := c.streams
	c.streams = map[chanKey]*sendStream{}
	c.mu.Unlock()
	for _, s := range streams {
		s.fail()
		<-s.ackDone // the connection is gone, so the receipt reader has stopped
		c.endStream(s, "connection lost")
	}
	c.drainStarted()
}

func (c *peerConn) drainStarted() bool {
	started := true
	c.drainOnce.Do(func() {
		started = false
		close(c.drained)
	})
	return started
}

// dropStream forgets s if a write broke it, so the channel opens a new
// stream once this one's end is settled: the peer may still send its last
// receipt count (it stops reading an oversize frame that way), which says
// how many of our accepted messages it queued.
func (c *peerConn) dropStream(s *sendStream) {
	if !s.broken() {
		return
	}
	c.mu.Lock()
	mine := c.streams[s.key] == s
	if mine {
		delete(c.streams, s.key)
		c.ending[s] = struct{}{}
	}
	c.mu.Unlock()
	if !mine {
		return
	}
	go func() {
		t := time.NewTimer(c.ep.cfg.DrainTimeout)
		defer t.Stop()
		select {
		case <-s.ackDone:
		case <-t.C:
			s.abandon()
		}
		c.endStream(s, "the peer stopped reading the channel")
	}()
}

// addGate registers an incoming stream's gate; false when the peer was
// revoked (the stream must deliver nothing).
func (c *peerConn) addGate(g *readGate) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.revoked.Load() {
		return false
	}
	c.readers[g] = struct{}{}
	return true
}

func (c *peerConn) removeGate(g *readGate) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.readers, g)
}

// closeGates closes the gates that match and returns them; with
// revokePeer the connection is marked revoked first, so that no stream
// registers after. A revoked peer's streams stop with SHUTTING_DOWN: the
// connection's close (NOT_AUTHORIZED) that follows says why, and its
// sends then fail with ErrTLS; a revoked team's stop with NOT_AUTHORIZED.
func (c *peerConn) closeGates(revokePeer bool, match func(*readGate) bool) []*readGate {
	c.mu.Lock()
	if revokePeer {
		c.revoked.Store(true)
	}
	var out []*readGate
	for g := range c.readers {
		if match(g) {
			out = append(out, g)
		}
	}
	c.mu.Unlock()
	code := wire.StreamCodeNotAuthorized
	if revokePeer {
		code = wire.StreamCodeShuttingDown
	}
	for _, g := range out {
		g.revoke(code)
	}
	return out
}

func (c *peerConn) isDraining() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.draining
}

// waitReady waits for the peer's HELLO.
func (c *peerConn) waitReady(ctx context.Context) error {
	select {
	case <-c.ready:
		return c.readyErr
	case <-ctx.Done():
		return fmt.Errorf("%w: waiting for the peer's confirmation: %w", ErrTimeout, ctx.Err())
	}
}

// pendingUnconfirmed is what the streams still open on c have not had
// confirmed; used when the endpoint stops waiting for c's drain.
func (c *peerConn) pendingUnconfirmed() uint64 {
	c.mu.Lock()
	streams := make([]*sendStream, 0, len(c.streams)+len(c.ending))
	for _, s := range c.streams {
		streams = append(streams, s)
	}
	for s := range c.ending {
		streams = append(streams, s)
	}
	c.mu.Unlock()
	var n uint64
	for _, s := range streams {
		n += s.unconfirmed()
	}
	return n
}
