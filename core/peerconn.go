package core

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/netip"
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

	// peerInstance is the peer endpoint's random instance id from its
	// HELLO; valid once ready is closed without error.
	peerInstance [wire.InstanceIDLen]byte
	ready        chan struct{}
	readyErr     error

	lastUse atomic.Uint64

	mu       sync.Mutex
	streams  map[chanKey]*sendStream
	draining bool

	ctrlMu  sync.Mutex
	ctrlOut *quic.SendStream

	peerDone  chan struct{} // closed when the peer's DONE arrives
	drainOnce sync.Once
	drained   chan struct{} // closed when a drain finished
	graceful  atomic.Bool   // closed by a completed drain
}

func newPeerConn(ep *Endpoint, qc *quic.Conn, addr netip.AddrPort, dialed bool) *peerConn {
	c := &peerConn{
		ep:       ep,
		qc:       qc,
		addr:     addr,
		dialed:   dialed,
		ready:    make(chan struct{}),
		streams:  make(map[chanKey]*sendStream),
		peerDone: make(chan struct{}),
		drained:  make(chan struct{}),
	}
	if certs := qc.ConnectionState().TLS.PeerCertificates; len(certs) > 0 {
		c.peerID = sha256.Sum256(certs[0].Raw)
	}
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
	hello := wire.AppendControl(nil, wire.ControlHello, c.ep.instance[:])
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
	if err != nil || m.Type != wire.ControlHello || len(m.Payload) != wire.InstanceIDLen {
		c.qc.CloseWithError(quic.ApplicationErrorCode(wire.ConnCodeControlError), "bad hello")
		c.setReady(fmt.Errorf("%w: peer sent no valid hello", ErrConnection))
		return
	}
	copy(c.peerInstance[:], m.Payload)
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

// stream returns the send stream for key, opening it if needed.
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
		str, err := c.qc.OpenStream()
		if err == nil {
			key.label = strings.Clone(key.label) // kept: must not alias the caller's memory
			s := newSendStream(key, str, header, c.ep.cfg.SendBufferBytes, &c.ep.stats)
			c.streams[key] = s
			c.ep.stats.openStreams.Add(1)
			c.mu.Unlock()
			return s, nil
		}
		var se *quic.StreamLimitReachedError // quic-go returns a pointer
		if !errors.As(err, &se) {
			c.mu.Unlock()
			return nil, fmt.Errorf("%w: %w", errDraining, err)
		}
		// The peer's stream limit: channels are unlimited, streams are
		// not, so the least recently used channel gives its stream back
		// (it reopens one on its next message). Several openers may be
		// waiting for the credit that frees, so each waits only a while
		// before it retires another stream and tries again.
		c.retireIdleLocked()
		c.mu.Unlock()
		if err := c.waitStreamCredit(lctx); err != nil {
			return nil, err
		}
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
// with nothing buffered; retiring flushes it first, so nothing is lost, and
// its channel's next stream waits for the receipt, so order holds. c.mu is
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
	done := c.ep.retireStreams(c.addr, []*sendStream{victim})[0]
	go func() {
		ctx, cancel := context.WithTimeout(c.qc.Context(), c.ep.cfg.DrainTimeout)
		defer cancel()
		if err := victim.retire(ctx); err != nil {
			c.ep.logf("retiring idle stream to %s: %v", c.addr, err)
		}
		c.ep.stats.openStreams.Add(-1)
		close(done)
	}()
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
func (c *peerConn) readStream(str *quic.Stream) {
	c.ep.stats.openStreams.Add(1)
	defer c.ep.stats.openStreams.Add(-1)
	r := bufio.NewReaderSize(str, readBufferSize)
	hdr, err := wire.ReadHeader(r)
	if errors.Is(err, io.EOF) {
		_ = str.Close()
		return
	}
	if err != nil {
		c.rejectStream(str, err)
		return
	}
	ch := Channel{Addr: c.addr, Kind: hdr.Kind, PeerID: c.peerID}
	switch hdr.Kind {
	case KindChannel:
		ch.TeamID, ch.Label = hdr.Channel.TeamID, hdr.Channel.Label
	case KindSync:
		ch.SyncType = hdr.Sync.SyncType
	}
	maxMsg := c.ep.cfg.MaxMessageSize
	for {
		n, err := wire.ReadFrameLen(r, maxMsg)
		if errors.Is(err, io.EOF) {
			// Everything read: our FIN is the sender's receipt.
			_ = str.Close()
			return
		}
		if err != nil {
			c.streamFailed(str, err)
			return
		}
		p, err := c.ep.readPayload(r, n)
		if err != nil {
			c.streamFailed(str, err)
			return
		}
		if err := c.ep.queue.push(c.ep.ctx, message{ch: &ch, payload: p}); err != nil {
			str.CancelRead(quic.StreamErrorCode(wire.StreamCodeShuttingDown))
			str.CancelWrite(quic.StreamErrorCode(wire.StreamCodeShuttingDown))
			return
		}
		c.touch()
		c.ep.stats.messagesReceived.Add(1)
		c.ep.stats.bytesReceived.Add(n)
	}
}

// streamFailed handles a read error: protocol violations reset the stream
// and are counted; a stream the peer reset or a connection that died needs
// nothing more.
func (c *peerConn) streamFailed(str *quic.Stream, err error) {
	for _, proto := range []error{wire.ErrFrameTooLarge, wire.ErrTruncated, wire.ErrMalformedHeader, wire.ErrUnknownKind, wire.ErrInvalidLabel, wire.ErrHeaderTooLarge} {
		if errors.Is(err, proto) {
			var se *quic.StreamError
			if errors.As(err, &se) {
				return // the peer reset it: not a protocol error of ours to report
			}
			c.rejectStream(str, err)
			return
		}
	}
}

func (c *peerConn) rejectStream(str *quic.Stream, err error) {
	var se *quic.StreamError
	if errors.As(err, &se) || !c.alive() {
		return
	}
	code := quic.StreamErrorCode(wire.StreamCodeFor(err))
	str.CancelRead(code)
	str.CancelWrite(code)
	c.ep.stats.streamsReset.Add(1)
	c.ep.logf("reset stream %d from %s: %v", str.StreamID(), c.addr, err)
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
	c.mu.Unlock()
	c.ep.forget(c)

	// Until this connection's streams are read, a new stream of the same
	// channel elsewhere must wait, or the peer could read the channel's
	// messages out of order.
	retired := c.ep.retireStreams(c.addr, streams)
	ctx, cancel := context.WithTimeout(c.qc.Context(), c.ep.cfg.DrainTimeout)
	defer cancel()

	select {
	case <-c.ready:
	case <-ctx.Done():
	}
	c.sendControl(wire.ControlGoAway)

	var wg sync.WaitGroup
	var failed atomic.Bool
	for i, s := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.retire(ctx); err != nil {
				failed.Store(true)
			}
			c.ep.stats.openStreams.Add(-1)
			close(retired[i])
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

// failStreams gives up on our streams after the connection died; what was
// buffered is lost (delivery is at most once when a connection dies).
func (c *peerConn) failStreams() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.draining = true
	if len(c.streams) == 0 {
		return
	}
	if !c.drainStarted() {
		c.ep.stats.openStreams.Add(-int64(len(c.streams)))
	}
	for _, s := range c.streams {
		s.fail()
	}
	c.streams = map[chanKey]*sendStream{}
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
// stream; streams retired on purpose already left the map.
func (c *peerConn) dropStream(s *sendStream) {
	if !s.broken() {
		return
	}
	c.mu.Lock()
	if c.streams[s.key] == s {
		delete(c.streams, s.key)
		c.ep.stats.openStreams.Add(-1)
	}
	c.mu.Unlock()
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
