// Package core is the aranya-quic engine: Aranya QUIC Channels over
// quic-go, usable as a Go library on its own. The C ABI in capi/ is a thin
// layer over it.
package core

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/aranya-quic/aranya-quic/core/wire"
)

// Endpoint sends and receives channel messages over one UDP socket.
type Endpoint struct {
	cfg      Config
	id       *identity
	instance [wire.InstanceIDLen]byte
	udp      *net.UDPConn
	tr       *quic.Transport
	ln       *quic.Listener
	qconf    *quic.Config
	local    netip.AddrPort
	cc       *ccState
	queue    *recvQueue
	delivery *delivery // nil unless Config.OnMessage is set
	stats    counters
	clock    atomic.Uint64
	reserved atomic.Uint64 // bytes of large frames being read in full
	log      *slog.Logger

	ctx    context.Context // canceled when Close finishes
	cancel context.CancelFunc

	conns *connTable[*peerConn]
	// order chains our streams of each channel (the send side); inOrder
	// chains the readers of the peers' streams of each channel (the
	// receive side).
	order   *channelOrder
	inOrder *channelOrder

	// out holds what the non-blocking sends queue per peer; res resolves
	// host names; events and presence report what happens.
	out      *outboxes
	res      *resolver
	events   *eventQueue
	presence *peerPresence
	// ids numbers non-blocking sends, closes and the shutdown.
	ids atomic.Uint64

	// auth is the per-team authorization list; known remembers the peers
	// admitted recently, for SetTrust to name. trustChange serializes the
	// calls that change trust or authorization; trustMu orders a trust
	// change against new connections being tracked (see admitConn), and
	// trustChanged (under it) says a SetTrust happened since the start.
	auth         *teamAuth
	known        *knownPeers
	trustChange  sync.Mutex
	trustMu      sync.Mutex
	trustChanged bool

	closeOnce  sync.Once
	closing    atomic.Bool   // set when Shutdown starts: sends fail with ErrClosed
	closed     chan struct{} // closed when the close finished
	shutdownID uint64
	closeErr   error
}

// NewEndpoint binds the socket and starts accepting connections.
func NewEndpoint(cfg Config) (*Endpoint, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	id, err := loadIdentity(&cfg)
	if err != nil {
		return nil, err
	}
	bindAP, err := ParseBindAddr(cfg.BindAddr)
	if err != nil {
		return nil, err
	}
	bind := net.UDPAddrFromAddrPort(bindAP)
	resetKey, err := statelessResetKey(&cfg, id)
	if err != nil {
		return nil, err
	}
	udp, err := net.ListenUDP("udp", bind)
	if err != nil {
		return nil, fmt.Errorf("%w: bind %s: %w", ErrConnection, cfg.BindAddr, err)
	}
	e := &Endpoint{
		cfg:      cfg,
		id:       id,
		udp:      udp,
		queue:    newRecvQueue(cfg.MaxQueueBytes, cfg.MaxQueueMessages),
		delivery: newDelivery(cfg.OnMessage),
		conns:    newConnTable[*peerConn](cfg.MaxConnections),
		order:    newChannelOrder(),
		inOrder:  newChannelOrder(),
		log:      cfg.Logger,
		events:   newEventQueue(cfg.MaxEvents),
		presence: newPeerPresence(),
		auth:     newTeamAuth(cfg.TeamAuthorization),
		known:    newKnownPeers(),
		closed:   make(chan struct{}),
	}
	e.out = newOutboxes(e, cfg.MaxOutboundBytesPerPeer, cfg.MaxOutboundBytes)
	if _, err := rand.Read(e.instance[:]); err != nil {
		udp.Close()
		return nil, fmt.Errorf("%w: instance id: %w", ErrInvalidConfig, err)
	}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	e.local = normalize(udp.LocalAddr().(*net.UDPAddr).AddrPort())
	e.res = newResolver(cfg.Resolver, cfg.ResolveTimeout, e.local)
	// Registered before any connection exists, so the hook finds it.
	e.cc = &ccState{want: cfg.CongestionControl}
	ccChoices.Store(udp.LocalAddr().String(), e.cc)
	qrk := quic.StatelessResetKey(resetKey)
	e.tr = &quic.Transport{Conn: udp, StatelessResetKey: &qrk}
	keepAlive := cfg.KeepAlive
	if keepAlive < 0 {
		keepAlive = 0
	}
	e.qconf = &quic.Config{
		HandshakeIdleTimeout:       cfg.HandshakeTimeout,
		MaxIdleTimeout:             cfg.IdleTimeout,
		KeepAlivePeriod:            keepAlive,
		MaxIncomingStreams:         int64(cfg.MaxChannelsPerPeer),
		MaxIncomingUniStreams:      1, // the control stream
		MaxStreamReceiveWindow:     4 << 20,
		MaxConnectionReceiveWindow: 8 << 20,
	}
	serverTLS := id.serverTLS()
	serverTLS.VerifyPeerCertificate = e.countingVerify(netip.AddrPort{}, id.verifyPeer)
	serverTLS.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		var from netip.AddrPort
		if ua, ok := hello.Conn.RemoteAddr().(*net.UDPAddr); ok {
			from = normalize(ua.AddrPort())
		}
		// crypto/tls refuses a client without our ALPN by itself; this
		// only makes the refusal visible in the stats and the events.
		if !slices.Contains(hello.SupportedProtos, wire.ALPN) {
			e.stats.handshakeFailures.Add(1)
			e.handshakeRejected(from, fmt.Sprintf("the client offered ALPN %q, not %q", hello.SupportedProtos, wire.ALPN))
			return nil, fmt.Errorf("%w: no common application protocol", ErrTLS)
		}
		// A config per client, so that a refusal names its address.
		conf := serverTLS.Clone()
		conf.GetConfigForClient = nil
		conf.VerifyPeerCertificate = e.countingVerify(from, id.verifyPeer)
		return conf, nil
	}
	e.ln, err = e.tr.Listen(serverTLS, e.qconf)
	if err != nil {
		ccChoices.Delete(udp.LocalAddr().String())
		udp.Close()
		return nil, fmt.Errorf("%w: listen: %w", ErrConnection, err)
	}
	go e.acceptLoop()
	return e, nil
}

func statelessResetKey(cfg *Config, id *identity) ([32]byte, error) {
	if cfg.StatelessResetKey != nil {
		return *cfg.StatelessResetKey, nil
	}
	der, err := x509.MarshalPKCS8PrivateKey(id.cert.Load().PrivateKey)
	if err != nil {
		return [32]byte{}, fmt.Errorf("%w: private key: %w", ErrInvalidConfig, err)
	}
	return deriveResetKey(der)
}

func (e *Endpoint) countingVerify(from netip.AddrPort, verify func([][]byte, [][]*x509.Certificate) error) func([][]byte, [][]*x509.Certificate) error {
	return func(raw [][]byte, chains [][]*x509.Certificate) error {
		err := verify(raw, chains)
		if err != nil {
			e.stats.handshakeFailures.Add(1)
			e.handshakeRejected(from, fmt.Sprintf("we rejected the peer's certificate: %v", err))
		}
		return err
	}
}

// handshakeRejected reports a refused handshake.
func (e *Endpoint) handshakeRejected(from netip.AddrPort, why string) {
	peer := "unknown address"
	if from.IsValid() {
		peer = from.String()
	}
	e.warnf("handshake with %s rejected: %s", peer, why)
	e.events.push(Event{Type: EventHandshakeRejected, Peer: peer, Addr: from, Err: fmt.Errorf("%w: %s", ErrTLS, why), Reason: why})
}

// connUp reports a connection that entered the map.
func (e *Endpoint) connUp(c *peerConn) {
	if !c.announced.CompareAndSwap(false, true) {
		return
	}
	way := "accepted from"
	if c.dialed {
		way = "dialed to"
	}
	e.infof("connection %s %s is up (peer id %s)", way, c.addr, logPeerID(c.peerID))
	if e.presence.up(c.addr) {
		e.events.push(Event{Type: EventPeerConnected, Peer: c.addr.String(), Addr: c.addr, PeerID: c.peerID, Reason: "connected"})
	}
}

// connDown reports the end of a connection connUp reported.
func (e *Endpoint) connDown(c *peerConn, err error) {
	if !c.announced.Load() {
		return
	}
	unconfirmed := c.unconfirmed.Load()
	why := "closed gracefully"
	if err != nil {
		why = err.Error()
	}
	if unconfirmed > 0 {
		e.warnf("connection to %s is down (peer id %s): %s; %d accepted message(s) not confirmed", c.addr, logPeerID(c.peerID), why, unconfirmed)
	} else {
		e.infof("connection to %s is down (peer id %s): %s", c.addr, logPeerID(c.peerID), why)
	}
	if last, total := e.presence.down(c.addr, unconfirmed); last {
		e.events.push(Event{Type: EventPeerDisconnected, Peer: c.addr.String(), Addr: c.addr, PeerID: c.peerID, Err: err, Unconfirmed: total, Reason: why})
	}
}

// logf logs details for debugging.
func (e *Endpoint) logf(format string, args ...any) {
	if e.log != nil {
		e.log.Debug(fmt.Sprintf(format, args...))
	}
}

// infof logs the life of connections.
func (e *Endpoint) infof(format string, args ...any) {
	if e.log != nil {
		e.log.Info(fmt.Sprintf(format, args...))
	}
}

// warnf logs what a user must hear of: messages given up, streams reset,
// refused handshakes.
func (e *Endpoint) warnf(format string, args ...any) {
	if e.log != nil {
		e.log.Warn(fmt.Sprintf(format, args...))
	}
}

// errorf logs failures of the library itself.
func (e *Endpoint) errorf(format string, args ...any) {
	if e.log != nil {
		e.log.Error(fmt.Sprintf(format, args...))
	}
}

// LocalAddr is the address the endpoint listens and dials from.
func (e *Endpoint) LocalAddr() netip.AddrPort { return e.local }

// Send sends msg on the channel (addr, teamID, label). It returns once the
// message is in the channel's send buffer, from which the transport takes
// it in order; it waits under backpressure up to the send timeout, and
// behind the messages TrySend queued for addr. Neither label nor msg is
// retained after Send returns.
func (e *Endpoint) Send(ctx context.Context, addr netip.AddrPort, teamID TeamID, label string, msg []byte) error {
	return e.SendTo(ctx, PeerAt(addr), teamID, label, msg)
}

// SendTo is Send to a peer named by address or host name.
func (e *Endpoint) SendTo(ctx context.Context, p Peer, teamID TeamID, label string, msg []byte) error {
	key, err := channelKey(teamID, label)
	if err != nil {
		return err
	}
	return e.sendPeer(ctx, p, key, msg)
}

// SendSync sends an Aranya sync message of the given sync type.
func (e *Endpoint) SendSync(ctx context.Context, addr netip.AddrPort, syncType uint32, msg []byte) error {
	return e.sendPeer(ctx, PeerAt(addr), syncKey(syncType), msg)
}

// SendSyncTo is SendSync to a peer named by address or host name.
func (e *Endpoint) SendSyncTo(ctx context.Context, p Peer, syncType uint32, msg []byte) error {
	return e.sendPeer(ctx, p, syncKey(syncType), msg)
}

// SendBatch sends count messages in order on the channel (addr, teamID,
// label), as count calls of Send would, message i being msg(i); the send
// timeout applies to each. It stops at the first message that fails and
// returns how many were accepted before it, with its error.
func (e *Endpoint) SendBatch(ctx context.Context, addr netip.AddrPort, teamID TeamID, label string, count int, msg func(i int) ([]byte, error)) (int, error) {
	return e.SendBatchTo(ctx, PeerAt(addr), teamID, label, count, msg)
}

// SendBatchTo is SendBatch to a peer named by address or host name.
func (e *Endpoint) SendBatchTo(ctx context.Context, p Peer, teamID TeamID, label string, count int, msg func(i int) ([]byte, error)) (int, error) {
	key, err := channelKey(teamID, label)
	if err != nil {
		return 0, err
	}
	return e.sendBatch(ctx, p, key, count, msg)
}

// SendSyncBatch is SendBatch for Aranya sync messages of one sync type.
func (e *Endpoint) SendSyncBatch(ctx context.Context, addr netip.AddrPort, syncType uint32, count int, msg func(i int) ([]byte, error)) (int, error) {
	return e.sendBatch(ctx, PeerAt(addr), syncKey(syncType), count, msg)
}

// SendSyncBatchTo is SendSyncBatch to a peer named by address or host
// name.
func (e *Endpoint) SendSyncBatchTo(ctx context.Context, p Peer, syncType uint32, count int, msg func(i int) ([]byte, error)) (int, error) {
	return e.sendBatch(ctx, p, syncKey(syncType), count, msg)
}

func (e *Endpoint) sendBatch(ctx context.Context, p Peer, key chanKey, count int, msg func(i int) ([]byte, error)) (int, error) {
	if err := e.checkPeer(p); err != nil {
		return 0, err
	}
	addr, direct := p.Addr()
	hdr := hdrOf(key)
	// After the first message, the rest go straight to the stream it
	// used for as long as that stream takes them; anything else (a
	// retired stream, a limit) goes the full way again. While messages
	// queued by TrySend are ahead, each message waits its turn behind
	// them.
	var last sent
	for i := 0; i < count; i++ {
		m, err := msg(i)
		if err != nil {
			return i, err
		}
		if !direct || e.out.busy(p) {
			last = sent{}
			if err := e.sendPeer(ctx, p, key, m); err != nil {
				return i, err
			}
			continue
		}
		if last.s != nil {
			ok, err := e.sendOnStream(ctx, last, m)
			if err != nil {
				return i, err
			}
			if ok {
				continue
			}
		}
		if last, err = e.sendTo(ctx, addr, key, hdr, m); err != nil {
			return i, err
		}
	}
	return count, nil
}

// sent is where a message went: the stream, on its connection.
type sent struct {
	c *peerConn
	s *sendStream
}

// sendOnStream sends msg on the stream an earlier message of a batch
// used. False without an error means the stream did not take it and the
// full path must.
func (e *Endpoint) sendOnStream(ctx context.Context, to sent, msg []byte) (bool, error) {
	if n := uint64(len(msg)); n > e.cfg.MaxMessageSize || n > to.c.peerMaxMessage || to.c.revoked.Load() {
		return false, nil
	}
	lctx := newLazyContext(ctx, e.cfg.SendTimeout)
	defer lctx.release()
	switch err := to.s.send(&lctx, msg); {
	case err == nil:
		e.sentOn(to, msg)
		return true, nil
	case errors.Is(err, ErrTimeout):
		return false, err
	default:
		return false, nil
	}
}

// sentOn counts a message the stream took.
func (e *Endpoint) sentOn(to sent, msg []byte) {
	to.c.touch()
	to.c.traffic.messagesSent.Add(1)
	to.c.traffic.bytesSent.Add(uint64(len(msg)))
	to.s.lastUse.Store(e.clock.Load())
	e.stats.messagesSent.Add(1)
	e.stats.bytesSent.Add(uint64(len(msg)))
}

// sendAddr checks a peer address once per send call and returns its
// normal form.
func (e *Endpoint) sendAddr(addr netip.AddrPort) (netip.AddrPort, error) {
	if err := checkPeerAddr(addr); err != nil {
		return addr, err
	}
	addr = normalize(addr)
	if isOwnAddr(e.local, addr) {
		return addr, fmt.Errorf("%w: %s is this endpoint's own address", ErrBadAddress, addr)
	}
	return addr, nil
}

// sendTo sends one message to an address sendAddr accepted, and says
// where it went.
func (e *Endpoint) sendTo(ctx context.Context, addr netip.AddrPort, key chanKey, hdr *wire.QuicMessage, msg []byte) (sent, error) {
	if uint64(len(msg)) > e.cfg.MaxMessageSize {
		return sent{}, fmt.Errorf("%w: %d bytes, the limit is %d", ErrMessageTooLarge, len(msg), e.cfg.MaxMessageSize)
	}
	lctxv := newLazyContext(ctx, e.cfg.SendTimeout)
	lctx := &lctxv
	defer lctx.release()
	// A connection found draining or dead before the message was written
	// is replaced and the send tries again, for as long as its timeout
	// allows: closing a connection never fails a send by itself.
	for {
		c, err := e.conn(lctx, addr)
		if err != nil {
			return sent{}, err
		}
		if c.revoked.Load() {
			// Revoked after the lookup: the next lookup dials, and the
			// handshake decides.
			e.conns.remove(c)
			continue
		}
		if uint64(len(msg)) > c.peerMaxMessage {
			return sent{}, fmt.Errorf("%w: %d bytes, the peer %s accepts at most %d", ErrMessageTooLarge, len(msg), addr, c.peerMaxMessage)
		}
		s, err := e.channelStream(lctx, c, key, hdr)
		if err == nil {
			err = s.send(lctx, msg)
			if errors.Is(err, errStreamRetired) || errors.Is(err, ErrNotAuthorized) {
				c.dropStream(s) // broken: the next attempt opens a new one
			}
		}
		switch {
		case err == nil:
			to := sent{c: c, s: s}
			e.sentOn(to, msg)
			return to, nil
		case errors.Is(err, ErrNotAuthorized):
			return sent{}, fmt.Errorf("%w (peer %s)", err, addr)
		case errors.Is(err, errDraining), errors.Is(err, errStreamRetired):
			// Not written: move to the connection that replaces this one.
			if !c.alive() {
				e.connGone(c)
			} else if c.isDraining() {
				e.conns.remove(c)
			}
			if lerr := lctx.err(); lerr != nil {
				return sent{}, fmt.Errorf("%w: the connection to %s kept closing under the send: %w", ErrTimeout, addr, err)
			}
			continue
		case errors.Is(err, ErrTimeout):
			return sent{}, err
		case lctx.err() != nil:
			return sent{}, fmt.Errorf("%w: %w", ErrTimeout, err)
		default:
			return sent{}, err
		}
	}
}

// channelStream returns c's stream for key, opening one if needed.
func (e *Endpoint) channelStream(lctx *lazyContext, c *peerConn, key chanKey, hdr *wire.QuicMessage) (*sendStream, error) {
	c.mu.Lock()
	s := c.streams[key]
	c.mu.Unlock()
	if s != nil {
		return s, nil
	}
	header, err := wire.AppendHeader(nil, hdr)
	if err != nil {
		return nil, err
	}
	return c.stream(lctx, key, header)
}

// conn returns a ready connection to addr, dialing if there is none. Sends
// that find a dial in progress wait for it rather than dialing again.
func (e *Endpoint) conn(lctx *lazyContext, addr netip.AddrPort) (*peerConn, error) {
	for {
		c, d, start, evicted, err := e.conns.connOrDial(addr)
		if err != nil {
			return nil, err
		}
		if d == nil {
			return c, nil
		}
		e.evict(evicted)
		if start {
			go e.dial(addr, d)
		}
		ctx := lctx.get()
		select {
		case <-d.done:
			if d.err != nil {
				return nil, d.err
			}
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: connecting to %s: %w", ErrTimeout, addr, ctx.Err())
		}
	}
}

// evict drains connections the table pushed out to make room.
func (e *Endpoint) evict(victims []*peerConn) {
	for _, c := range victims {
		e.stats.evictions.Add(1)
		e.logf("evicting %s", c.addr)
		c.drain(true)
	}
}

// dial makes a connection for the waiting senders. It runs detached from
// any one sender's context so that one caller giving up does not fail the
// others.
func (e *Endpoint) dial(addr netip.AddrPort, d *dialOp) {
	e.stats.dials.Add(1)
	c, err := e.dialConn(addr)
	if err == nil {
		e.insert(c)
	}
	e.conns.dialDone(addr, d)
	d.err = err
	close(d.done)
}

func (e *Endpoint) dialConn(addr netip.AddrPort) (*peerConn, error) {
	timeout := min(e.cfg.ConnectTimeout, e.cfg.HandshakeTimeout)
	ctx, cancel := context.WithTimeout(e.ctx, timeout)
	defer cancel()
	clientTLS := e.id.clientTLS()
	clientTLS.VerifyPeerCertificate = e.countingVerify(addr, e.id.verifyPeer)
	qc, err := e.tr.Dial(ctx, net.UDPAddrFromAddrPort(addr), clientTLS, e.qconf)
	if err != nil {
		if e.ctx.Err() != nil {
			return nil, ErrClosed
		}
		var te *quic.TransportError
		if errors.As(err, &te) && te.Remote && te.ErrorCode.IsCryptoError() {
			// The peer refused us during the handshake. Refusals by our
			// own verifier were counted when they happened.
			e.stats.handshakeFailures.Add(1)
			e.handshakeRejected(addr, fmt.Sprintf("the peer rejected our certificate: %v", te))
		}
		err = classifyConnError(err)
		if errors.Is(err, ErrTLS) {
			return nil, err
		}
		if ctx.Err() != nil {
			// The cause is the dial's own deadline: it is no timeout of
			// the send's, so it is kept out of the error chain.
			return nil, fmt.Errorf("%w: no answer from %s within the connect timeout (%v): %v", ErrConnection, addr, timeout, err)
		}
		return nil, err
	}
	c := newPeerConn(e, qc, addr, true)
	if ok, err := e.admitConn(c); !ok {
		e.refuseConn(c, err)
		return nil, err
	}
	c.start()
	if err := c.waitReady(ctx); err != nil {
		if errors.Is(err, ErrTLS) {
			e.stats.handshakeFailures.Add(1)
			e.handshakeRejected(addr, fmt.Sprintf("the peer rejected our certificate: %v", err))
		}
		qc.CloseWithError(quic.ApplicationErrorCode(wire.ConnCodeHelloTimeout), "no hello")
		if errors.Is(err, ErrTimeout) {
			err = fmt.Errorf("%w: %s completed the handshake but sent no HELLO within the connect timeout (%v)", ErrConnection, addr, timeout)
		}
		return nil, err
	}
	if c.peerInstance == e.instance {
		// Another address of this host reached our own socket.
		qc.CloseWithError(quic.ApplicationErrorCode(wire.ConnCodeShutdown), "own address")
		return nil, fmt.Errorf("%w: %s is this endpoint's own address", ErrBadAddress, addr)
	}
	return c, nil
}

func (e *Endpoint) acceptLoop() {
	for {
		qc, err := e.ln.Accept(e.ctx)
		if err != nil {
			if !e.closing.Load() {
				e.errorf("no longer accepting connections: %v", err)
			}
			return
		}
		go e.accept(qc)
	}
}

func (e *Endpoint) accept(qc *quic.Conn) {
	ua, ok := qc.RemoteAddr().(*net.UDPAddr)
	if !ok {
		qc.CloseWithError(quic.ApplicationErrorCode(wire.ConnCodeControlError), "bad address")
		return
	}
	c := newPeerConn(e, qc, normalize(ua.AddrPort()), false)
	if ok, err := e.admitConn(c); !ok {
		e.refuseConn(c, err)
		return
	}
	c.start()
	ctx, cancel := context.WithTimeout(e.ctx, e.cfg.HandshakeTimeout)
	defer cancel()
	if err := c.waitReady(ctx); err != nil {
		qc.CloseWithError(quic.ApplicationErrorCode(wire.ConnCodeHelloTimeout), "no hello")
		return
	}
	if c.peerInstance == e.instance {
		return // our own dial, which fails itself and closes the connection
	}
	e.stats.accepts.Add(1)
	e.insert(c)
}

// insert puts a ready connection in the map. When the peer already has a
// live connection there, one of the two is drained: on a simultaneous open
// both ends keep the connection dialed by the endpoint with the smaller
// instance id, so they agree without talking; otherwise the newer
// connection wins (the peer restarted, or re-dialed after a GOAWAY we have
// not read yet).
func (e *Endpoint) insert(c *peerConn) {
	if !c.alive() {
		return
	}
	inserted, evicted := e.conns.insert(c, func(old *peerConn) bool {
		return old.alive() && old.peerInstance == c.peerInstance && old.dialed != c.dialed &&
			lessInstance(dialerInstance(e, old), dialerInstance(e, c))
	})
	if !inserted {
		c.drain(true)
		return
	}
	e.connUp(c)
	for _, old := range evicted {
		if old.addr == c.addr {
			if old.peerInstance != c.peerInstance {
				// The peer restarted: the old connection is dead, and a
				// drain would only hold its streams (and the channels'
				// order behind them) until the drain timeout.
				_ = old.qc.CloseWithError(quic.ApplicationErrorCode(wire.ConnCodeShutdown), "peer restarted")
				continue
			}
			old.drain(true) // replaced, not evicted
			continue
		}
		e.evict([]*peerConn{old})
	}
}

// refuseConn closes a new connection admitConn did not track.
func (e *Endpoint) refuseConn(c *peerConn, err error) {
	if errors.Is(err, ErrClosed) {
		_ = c.qc.CloseWithError(quic.ApplicationErrorCode(wire.ConnCodeShutdown), "closing")
		return
	}
	e.stats.handshakeFailures.Add(1)
	e.handshakeRejected(c.addr, fmt.Sprintf("the peer's certificate is no longer trusted: %v", err))
	_ = c.qc.CloseWithError(quic.ApplicationErrorCode(wire.ConnCodeNotAuthorized), "certificate no longer trusted")
}

func dialerInstance(e *Endpoint, c *peerConn) [wire.InstanceIDLen]byte {
	if c.dialed {
		return e.instance
	}
	return c.peerInstance
}

func lessInstance(a, b [wire.InstanceIDLen]byte) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

// connGone cleans up after a connection ended, for whatever reason.
func (e *Endpoint) connGone(c *peerConn) {
	if !e.conns.gone(c) {
		return
	}
	var lost error
	if c.revoked.Load() {
		lost = fmt.Errorf("%w: closed because the peer's certificate is no longer trusted", ErrTLS)
	} else if !c.graceful.Load() {
		var ae *quic.ApplicationError
		cause := context.Cause(c.qc.Context())
		if !(errors.As(cause, &ae) && uint64(ae.ErrorCode) == wire.ConnCodeGraceful) {
			e.stats.connectionsLost.Add(1)
			lost = fmt.Errorf("%w: %w", ErrConnection, cause)
		}
	}
	c.failStreams()
	e.connDown(c, lost)
	close(c.gone)
}

// Receive copies the oldest queued message into buf. It returns
// ErrWouldBlock when the queue is empty, and ErrBufferTooSmall with the
// needed size (the message stays queued) when buf is too short.
func (e *Endpoint) Receive(buf []byte) (Channel, int, error) {
	return e.queue.pop(buf)
}

// ReceiveContext is Receive that waits for a message until ctx ends
// (ErrTimeout) or the endpoint closes (ErrClosed).
func (e *Endpoint) ReceiveContext(ctx context.Context, buf []byte) (Channel, int, error) {
	ch, n, err := e.queue.popWait(ctx, buf)
	if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return ch, n, fmt.Errorf("%w: %w", ErrTimeout, err)
	}
	return ch, n, err
}

// ReceiveBatch takes up to max of the oldest queued messages, copying
// their payloads one after another into buf while each fits in what is
// left, and calls each, under the queue's lock, for every message taken
// with its channel and the payload's offset and length in buf (each must be
// quick and must not call into the endpoint; ch is valid only during the
// call). It returns how many it took: at least one, or an error. An empty
// queue gives ErrWouldBlock. When the oldest message alone is longer than
// buf, it stays queued and ReceiveBatch returns ErrBufferTooSmall with the
// length needed.
func (e *Endpoint) ReceiveBatch(buf []byte, max int, each func(ch *Channel, off, n int)) (count, need int, err error) {
	return e.queue.popBatch(buf, max, each)
}

// ReceiveBatchContext is ReceiveBatch that waits for a message until ctx
// ends (ErrTimeout) or the endpoint closes (ErrClosed).
func (e *Endpoint) ReceiveBatchContext(ctx context.Context, buf []byte, max int, each func(ch *Channel, off, n int)) (count, need int, err error) {
	count, need, err = e.queue.popBatchWait(ctx, buf, max, each)
	if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return 0, 0, fmt.Errorf("%w: %w", ErrTimeout, err)
	}
	return count, need, err
}

// SetQueueNotify registers fn, called under the queue's lock with true
// when the receive queue becomes non-empty (and at close) and false when it
// becomes empty; it is called once at registration with the current state.
// SetQueueNotify(nil) detaches; after it returns fn is not called again.
// fn must not call back into the endpoint.
func (e *Endpoint) SetQueueNotify(fn func(nonEmpty bool)) { e.queue.setNotify(fn) }

// CloseConnection closes the connection to addr gracefully: our streams
// are written and read by the peer, the peer finishes its own, then the
// connection closes with code 0 (bounded by the drain timeout). It also
// waits for connections to addr that are still draining (after an
// eviction or a replacement). It returns nil when the peer confirmed every
// message accepted on them, and an *UnconfirmedError (errors.Is
// ErrUnconfirmed) with the count when it did not. With no connection to
// addr it does nothing.
func (e *Endpoint) CloseConnection(addr netip.AddrPort) error {
	return e.CloseConnectionTo(PeerAt(addr))
}

// closeAddr closes the connections to addr; see CloseConnection.
func (e *Endpoint) closeAddr(addr netip.AddrPort) error {
	live, found, draining := e.conns.removeAddr(addr)
	if found {
		draining = append(draining, live)
	}
	for _, c := range draining {
		c.drain(true)
	}
	err := e.awaitDrains(draining, nil)
	if err != nil {
		e.warnf("closing the connection to %s: %v", addr, err)
	}
	return err
}

// awaitDrains waits for the connections' drains (until deadline fires, if
// it is not nil) and reports what they left unconfirmed.
func (e *Endpoint) awaitDrains(conns []*peerConn, deadline <-chan time.Time) error {
	var total uint64
	peers := 0
	pending := 0
	for _, c := range conns {
		select {
		case <-c.drained:
		case <-deadline:
		}
		n := c.unconfirmed.Load()
		select {
		case <-c.drained:
		default:
			// Still draining at the deadline: whatever is not confirmed
			// now is given up.
			pending++
			n += c.pendingUnconfirmed()
		}
		if n > 0 {
			total += n
			peers++
		}
	}
	if total == 0 {
		return nil
	}
	detail := "the drain timed out or the connection ended before the peer confirmed them"
	if pending > 0 {
		detail = fmt.Sprintf("%d connection(s) still draining when the endpoint closed", pending)
	}
	return &UnconfirmedError{Messages: total, Peers: peers, Detail: detail}
}

// Close closes the endpoint and waits until it is closed: Shutdown, then
// wait. Messages TrySend queued are handed over first (for up to the drain
// timeout; those that cannot be fail with events), then every connection
// drains (bounded by the drain timeout), the socket closes and blocked
// receivers wake with ErrClosed. From its start nothing more is queued:
// what peers send meanwhile stays unconfirmed (their senders hear of it).
// Messages already queued that the application has not taken are
// dropped, counted in Stats.DroppedAtClose and logged. It returns an
// *UnconfirmedError when accepted messages were not confirmed by their
// peers in time, counting the queued ones never sent. It is safe to call
// more than once; later calls return the first call's result.
func (e *Endpoint) Close() error {
	e.Shutdown()
	<-e.closed
	return e.closeErr
}

// runClose is the close that Shutdown starts.
func (e *Endpoint) runClose() {
	if e.delivery != nil {
		e.delivery.close() // waits for the callbacks in progress
	}
	// Nothing more is queued (and so confirmed) from here on: the
	// messages the peers send while we drain are left unconfirmed,
	// which their senders hear of, rather than confirmed and dropped.
	notSent := e.out.close(time.After(e.cfg.DrainTimeout))
	conns := e.conns.close()
	e.ln.Close()
	for _, c := range conns {
		c.drain(true)
	}
	err := e.awaitDrains(conns, time.After(e.cfg.DrainTimeout+time.Second))
	for _, c := range conns {
		c.qc.CloseWithError(quic.ApplicationErrorCode(wire.ConnCodeShutdown), "endpoint closed")
	}
	// Their ends are reported before the shutdown's event, the last one.
	settle := time.After(time.Second)
	for _, c := range conns {
		select {
		case <-c.gone:
		case <-settle:
		}
	}
	if n := e.queue.close(); n > 0 {
		e.stats.droppedAtClose.Add(uint64(n))
		e.warnf("closed with %d received message(s) the application had not taken from the queue", n)
	}
	e.cancel()
	if cerr := e.tr.Close(); cerr != nil && err == nil {
		e.errorf("closing the QUIC transport: %v", cerr)
	}
	ccChoices.CompareAndDelete(e.udp.LocalAddr().String(), e.cc)
	e.udp.Close()
	if notSent > 0 {
		var ue *UnconfirmedError
		if errors.As(err, &ue) {
			ue.Messages += notSent
			ue.Detail += fmt.Sprintf("; %d queued message(s) were not sent before the endpoint closed", notSent)
		} else {
			err = &UnconfirmedError{Messages: notSent, Detail: "queued messages were not sent before the endpoint closed"}
		}
	}
	ev := Event{Type: EventShutdownFinished, ID: e.shutdownID, Peer: e.local.String(), Addr: e.local, Err: err, Reason: "closed"}
	if err != nil {
		e.warnf("endpoint %s closed: %v", e.local, err)
		ev.Reason = err.Error()
		var ue *UnconfirmedError
		if errors.As(err, &ue) {
			ev.Unconfirmed = ue.Messages
		}
	} else {
		e.infof("endpoint %s closed", e.local)
	}
	e.closeErr = err
	e.events.pushLast(ev)
	close(e.closed)
}

// Stats returns the counters and gauges.
func (e *Endpoint) Stats() Stats {
	open := e.conns.size()
	qm, qb := e.queue.depth()
	outMsgs, outBytes := e.out.depth()
	return Stats{
		OpenConnections:     uint64(open),
		Dials:               e.stats.dials.Load(),
		Accepts:             e.stats.accepts.Load(),
		Evictions:           e.stats.evictions.Load(),
		HandshakeFailures:   e.stats.handshakeFailures.Load(),
		OpenStreams:         uint64(max(e.stats.openStreams.Load(), 0)),
		MessagesSent:        e.stats.messagesSent.Load(),
		BytesSent:           e.stats.bytesSent.Load(),
		MessagesReceived:    e.stats.messagesReceived.Load(),
		BytesReceived:       e.stats.bytesReceived.Load(),
		QueueMessages:       qm,
		QueueBytes:          qb,
		StreamsReset:        e.stats.streamsReset.Load(),
		ConnectionsLost:     e.stats.connectionsLost.Load(),
		MessagesUnconfirmed: e.stats.messagesUnconfirmed.Load(),
		DroppedAtClose:      e.stats.droppedAtClose.Load(),
		OutboundMessages:    outMsgs,
		OutboundBytes:       outBytes,
		SendsFailed:         e.stats.sendsFailed.Load(),
		EventsDropped:       e.events.droppedTotal(),
		ConnectionsRevoked:  e.stats.connectionsRevoked.Load(),
		MessagesRevoked:     e.stats.messagesRevoked.Load(),
		StreamsRefused:      e.stats.streamsRefused.Load(),
		CongestionControl:   e.cc.inUse(),
	}
}

// peerFingerprint is the SHA-256 of our leaf certificate, as peers see it.
func (e *Endpoint) peerFingerprint() PeerID { return sha256.Sum256(e.id.cert.Load().Certificate[0]) }
