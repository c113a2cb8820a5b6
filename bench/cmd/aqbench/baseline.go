package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
)

// The baselines: what a user would write instead of this library, with
// the same certificates, TLS checks and flow-control windows, and the same
// framing (a 4-byte big-endian length, then the payload, each message its
// own Write; the reader reads whole frames).

const benchALPN = "aqbench/1"

// creds are the PEM files of examples/certgen, loaded like core loads them.
type creds struct {
	server, client *tls.Config
}

func loadCreds(dir string) (*creds, error) {
	ca, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(ca) {
		return nil, errors.New("no CA certificate in ca.pem")
	}
	load := func(name string) (tls.Certificate, error) {
		return tls.LoadX509KeyPair(filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key"))
	}
	a, err := load("alice")
	if err != nil {
		return nil, err
	}
	b, err := load("bob")
	if err != nil {
		return nil, err
	}
	// The same chain check core does on both sides (no host name).
	verify := func(raw [][]byte, _ [][]*x509.Certificate) error {
		if len(raw) == 0 {
			return errors.New("no certificate")
		}
		certs := make([]*x509.Certificate, len(raw))
		for i, r := range raw {
			c, err := x509.ParseCertificate(r)
			if err != nil {
				return err
			}
			certs[i] = c
		}
		inter := x509.NewCertPool()
		for _, c := range certs[1:] {
			inter.AddCert(c)
		}
		_, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
		return err
	}
	return &creds{
		server: &tls.Config{
			MinVersion:            tls.VersionTLS13,
			Certificates:          []tls.Certificate{b},
			ClientAuth:            tls.RequireAnyClientCert,
			VerifyPeerCertificate: verify,
			NextProtos:            []string{benchALPN},
		},
		client: &tls.Config{
			MinVersion:            tls.VersionTLS13,
			Certificates:          []tls.Certificate{a},
			InsecureSkipVerify:    true,
			VerifyPeerCertificate: verify,
			NextProtos:            []string{benchALPN},
			ServerName:            "bob",
		},
	}, nil
}

// quicConf matches the windows and timeouts core configures.
func quicConf() *quic.Config {
	return &quic.Config{
		HandshakeIdleTimeout:       10 * time.Second,
		MaxIdleTimeout:             30 * time.Second,
		KeepAlivePeriod:            10 * time.Second,
		MaxIncomingStreams:         1024,
		MaxIncomingUniStreams:      1024,
		MaxStreamReceiveWindow:     4 << 20,
		MaxConnectionReceiveWindow: 8 << 20,
	}
}

type quicPair struct {
	srvTr, cliTr *quic.Transport
	ln           *quic.Listener
	cli, srv     *quic.Conn
}

func newTransport() (*quic.Transport, error) {
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	return &quic.Transport{Conn: udp}, nil
}

func listenQUIC(c *creds) (*quic.Transport, *quic.Listener, error) {
	tr, err := newTransport()
	if err != nil {
		return nil, nil, err
	}
	ln, err := tr.Listen(c.server, quicConf())
	return tr, ln, err
}

func dialQUICPair(ctx context.Context, c *creds) (*quicPair, error) {
	p := &quicPair{}
	var err error
	if p.srvTr, p.ln, err = listenQUIC(c); err != nil {
		return nil, err
	}
	if p.cliTr, err = newTransport(); err != nil {
		return nil, err
	}
	accepted := make(chan *quic.Conn, 1)
	go func() {
		conn, err := p.ln.Accept(ctx)
		if err != nil {
			accepted <- nil
			return
		}
		accepted <- conn
	}()
	if p.cli, err = p.cliTr.Dial(ctx, p.srvTr.Conn.LocalAddr(), c.client, quicConf()); err != nil {
		return nil, err
	}
	if p.srv = <-accepted; p.srv == nil {
		return nil, errors.New("accept failed")
	}
	return p, nil
}

func (p *quicPair) close() {
	p.cli.CloseWithError(0, "")
	p.srv.CloseWithError(0, "")
	p.ln.Close()
	p.cliTr.Close()
	p.srvTr.Close()
}

func appendFrame(dst, payload []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(payload)))
	return append(dst, payload...)
}

// readFrames reads frames until EOF, calling fn with each payload length.
func readFrames(r io.Reader, maxLen int, fn func(n int)) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var hdr [4]byte
	buf := make([]byte, maxLen)
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		n := int(binary.BigEndian.Uint32(hdr[:]))
		if n > maxLen {
			return fmt.Errorf("frame of %d bytes", n)
		}
		if _, err := io.ReadFull(br, buf[:n]); err != nil {
			return err
		}
		fn(n)
	}
}

// streamResult is one throughput run: messages and payload bytes that the
// reader got, between the writer's start and the reader's last frame, and
// the process CPU time over the same span.
type streamResult struct {
	msgs, bytes int64
	elapsed     time.Duration
	cpu         cpuMeter
}

func (r streamResult) metrics() map[string]float64 {
	s := r.elapsed.Seconds()
	return map[string]float64{
		"msgs_per_s":     float64(r.msgs) / s,
		"gbit_s":         float64(r.bytes) * 8 / s / 1e9,
		"msgs":           float64(r.msgs),
		"seconds":        s,
		"cpu_ns_per_msg": r.cpu.perMsg(r.msgs),
	}
}

// checkEvery is how many messages a producer sends between looks at the
// clock: small frames every 64, large ones every one.
func checkEvery(size int) int {
	if size >= 4096 {
		return 1
	}
	return 64
}

// produce sends frame through s until deadline, then closes s.
func produce(s frameSender, frame []byte, deadline time.Time, every int) error {
	for i := 0; ; i++ {
		if err := s.Send(frame); err != nil {
			return err
		}
		if i%every == 0 && time.Now().After(deadline) {
			break
		}
	}
	return s.Close()
}

// pump sends frames of size bytes to w for dur through the -writer kind
// of sender, then ends the stream; the reader side counts what arrives.
func pump(w io.WriteCloser, r io.Reader, size int, dur time.Duration, writer string) (streamResult, error) {
	frame := appendFrame(nil, make([]byte, size))
	s, err := newSender(writer, w, len(frame))
	if err != nil {
		return streamResult{}, err
	}
	var res streamResult
	done := make(chan error, 1)
	var end time.Time
	res.cpu = startCPU()
	start := time.Now()
	go func() {
		err := readFrames(r, size, func(n int) {
			res.msgs++
			res.bytes += int64(n)
		})
		end = time.Now()
		res.cpu.stop()
		done <- err
	}()
	if err := produce(s, frame, start.Add(dur), checkEvery(size)); err != nil {
		return streamResult{}, err
	}
	if err := <-done; err != nil {
		return streamResult{}, err
	}
	res.elapsed = end.Sub(start)
	return res, nil
}

// packetMetrics adds the sender's mean QUIC packet size (UDP payload,
// handshake included), the figure ceiling-udp's datagram size compares
// with.
func packetMetrics(m map[string]float64, conns ...*quic.Conn) {
	var bytes, pkts uint64
	for _, c := range conns {
		st := c.ConnectionStats()
		bytes += st.BytesSent
		pkts += st.PacketsSent
	}
	if pkts > 0 {
		m["avg_packet_bytes"] = float64(bytes) / float64(pkts)
		m["packets"] = float64(pkts)
	}
}

func runQUICStream(c *creds, size int, dur time.Duration, writer string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), dur+30*time.Second)
	defer cancel()
	p, err := dialQUICPair(ctx, c)
	if err != nil {
		return nil, err
	}
	defer p.close()
	w, err := p.cli.OpenUniStreamSync(ctx)
	if err != nil {
		return nil, err
	}
	// The stream exists for the peer once it carries data; the reader
	// accepts it in the background, so the first frame is timed like the
	// rest.
	rc := make(chan *quic.ReceiveStream, 1)
	go func() {
		s, _ := p.srv.AcceptUniStream(ctx)
		rc <- s
	}()
	r := &lazyReader{get: func() io.Reader {
		s := <-rc
		if s == nil {
			return errReader{}
		}
		return s
	}}
	res, err := pump(w, r, size, dur, writer)
	if err != nil {
		return nil, err
	}
	m := res.metrics()
	packetMetrics(m, p.cli)
	return m, nil
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("accept failed") }

type lazyReader struct {
	get func() io.Reader
	r   io.Reader
}

func (l *lazyReader) Read(p []byte) (int, error) {
	if l.r == nil {
		l.r = l.get()
	}
	return l.r.Read(p)
}

func tlsPair(c *creds) (cli, srv *tls.Conn, err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	defer ln.Close()
	type acc struct {
		c   *tls.Conn
		err error
	}
	ch := make(chan acc, 1)
	go func() {
		raw, err := ln.Accept()
		if err != nil {
			ch <- acc{nil, err}
			return
		}
		s := tls.Server(raw, c.server)
		ch <- acc{s, s.Handshake()}
	}()
	cli, err = tls.Dial("tcp", ln.Addr().String(), c.client)
	if err != nil {
		return nil, nil, err
	}
	a := <-ch
	if a.err != nil {
		return nil, nil, a.err
	}
	return cli, a.c, nil
}

type closeWriter struct{ *tls.Conn }

func (c closeWriter) Close() error { return c.CloseWrite() }

func runTLSStream(c *creds, size int, dur time.Duration, writer string) (map[string]float64, error) {
	cli, srv, err := tlsPair(c)
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	defer srv.Close()
	res, err := pump(closeWriter{cli}, srv, size, dur, writer)
	if err != nil {
		return nil, err
	}
	return res.metrics(), nil
}

// runQUICPingPong: the client writes a 64-byte frame on a bidirectional
// stream, the server echoes it, and the client times the round trip. With
// load, a second stream of the same connection carries 64 KiB messages
// from the client (expert writer, as fast as the connection takes them)
// to the server, which discards them: the latency of a small message
// behind a bulk transfer on one connection.
func runQUICPingPong(c *creds, size int, dur time.Duration, load bool) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), dur+30*time.Second)
	defer cancel()
	p, err := dialQUICPair(ctx, c)
	if err != nil {
		return nil, err
	}
	defer p.close()
	s, err := p.cli.OpenStreamSync(ctx)
	if err != nil {
		return nil, err
	}
	go func() {
		ss, err := p.srv.AcceptStream(ctx)
		if err != nil {
			return
		}
		br := bufio.NewReader(ss)
		buf := make([]byte, 4+size)
		for {
			if _, err := io.ReadFull(br, buf); err != nil {
				return
			}
			if _, err := ss.Write(buf); err != nil {
				return
			}
		}
	}()
	var bulk *bulkLoad
	if load {
		if bulk, err = startBulkLoad(ctx, p); err != nil {
			return nil, err
		}
	}
	frame := appendFrame(nil, make([]byte, size))
	in := make([]byte, len(frame))
	br := bufio.NewReader(s)
	var rtts []time.Duration
	// Warm-up: the first round trip opens the stream on both sides.
	for i := 0; i < 10; i++ {
		if _, err := s.Write(frame); err != nil {
			return nil, err
		}
		if _, err := io.ReadFull(br, in); err != nil {
			return nil, err
		}
	}
	if bulk != nil {
		// The bulk flow leaves slow start and fills its windows before
		// the samples count.
		time.Sleep(time.Until(bulk.start.Add(200 * time.Millisecond)))
	}
	var bulkFrom int64
	var measureStart time.Time
	if bulk != nil {
		bulkFrom, measureStart = bulk.got.Load(), time.Now()
	}
	deadline := time.Now().Add(dur)
	for time.Now().Before(deadline) {
		t := time.Now()
		if _, err := s.Write(frame); err != nil {
			return nil, err
		}
		if _, err := io.ReadFull(br, in); err != nil {
			return nil, err
		}
		rtts = append(rtts, time.Since(t))
	}
	m := latencyMetrics(rtts)
	if bulk != nil {
		bytes := bulk.got.Load() - bulkFrom
		m["bulk_gbit_s"] = float64(bytes) * 8 / time.Since(measureStart).Seconds() / 1e9
		if err := bulk.stop(); err != nil {
			return nil, fmt.Errorf("bulk stream: %w", err)
		}
	}
	return m, nil
}

// bulkLoad is the 64 KiB message flow of the loaded ping-pong.
type bulkLoad struct {
	start time.Time
	got   atomic.Int64 // payload bytes the server has read
	quit  atomic.Bool
	sent  chan error // the producer's end: nil once the stream is closed
	read  chan error // the reader's end: nil at EOF
}

func startBulkLoad(ctx context.Context, p *quicPair) (*bulkLoad, error) {
	const size = 64 << 10
	w, err := p.cli.OpenUniStreamSync(ctx)
	if err != nil {
		return nil, err
	}
	b := &bulkLoad{start: time.Now(), sent: make(chan error, 1), read: make(chan error, 1)}
	go func() {
		r, err := p.srv.AcceptUniStream(ctx)
		if err != nil {
			b.read <- err
			return
		}
		b.read <- readFrames(r, size, func(n int) { b.got.Add(int64(n)) })
	}()
	frame := appendFrame(nil, make([]byte, size))
	ew := newExpertWriter(w, expertQueueLimit(len(frame)))
	go func() {
		for !b.quit.Load() {
			if err := ew.Send(frame); err != nil {
				b.sent <- err
				return
			}
		}
		b.sent <- ew.Close()
	}()
	return b, nil
}

// stop ends the flow the graceful way (queue drained, FIN read), so the
// connection stays healthy until the pair is closed.
func (b *bulkLoad) stop() error {
	b.quit.Store(true)
	if err := <-b.sent; err != nil {
		return err
	}
	return <-b.read
}

// runQUICDial times a new connection from a fresh socket, a new stream and
// one 64-byte frame until the server has read the frame.
func runQUICDial(c *creds, iters int) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srvTr, ln, err := listenQUIC(c)
	if err != nil {
		return nil, err
	}
	defer srvTr.Close()
	defer ln.Close()
	got := make(chan time.Time, 1)
	go func() {
		for {
			conn, err := ln.Accept(ctx)
			if err != nil {
				return
			}
			go func() {
				s, err := conn.AcceptUniStream(ctx)
				if err != nil {
					return
				}
				buf := make([]byte, 4+64)
				if _, err := io.ReadFull(s, buf); err != nil {
					return
				}
				got <- time.Now()
			}()
		}
	}()
	frame := appendFrame(nil, make([]byte, 64))
	var lat []time.Duration
	for i := 0; i < iters+2; i++ {
		tr, err := newTransport()
		if err != nil {
			return nil, err
		}
		t := time.Now()
		conn, err := tr.Dial(ctx, srvTr.Conn.LocalAddr(), c.client, quicConf())
		if err != nil {
			return nil, err
		}
		s, err := conn.OpenUniStreamSync(ctx)
		if err != nil {
			return nil, err
		}
		if _, err := s.Write(frame); err != nil {
			return nil, err
		}
		end := <-got
		if i >= 2 { // two warm-up dials
			lat = append(lat, end.Sub(t))
		}
		conn.CloseWithError(0, "")
		tr.Close()
	}
	return latencyMetrics(lat), nil
}

func latencyMetrics(d []time.Duration) map[string]float64 {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	q := func(p float64) float64 {
		if len(d) == 0 {
			return 0
		}
		i := int(p * float64(len(d)-1))
		return float64(d[i].Nanoseconds()) / 1e3
	}
	return map[string]float64{"p50_us": q(0.5), "p99_us": q(0.99), "samples": float64(len(d))}
}

// baselineMain runs one baseline measurement and prints its JSON line.
func baselineMain(args []string) error {
	fs := flag.NewFlagSet("go", flag.ExitOnError)
	certs := fs.String("certs", "build/bench/certs", "directory of examples/certgen PEM files")
	size := fs.Int("size", 64, "payload bytes per message")
	dur := durationFlag(fs, "dur", time.Second, "how long to send (1s, 500ms, or seconds: 1, 0.5)")
	iters := fs.Int("iters", 20, "iterations (dial)")
	writer := fs.String("writer", "naive", "quic-msg, tls-msg, quic-par, quic-fanout: naive (one Write per message) or expert (queue + writer goroutine + bufio)")
	streams := fs.Int("streams", 8, "quic-par: streams (one producer goroutine each)")
	peers := fs.Int("peers", 32, "quic-fanout: receiving endpoints")
	load := fs.Bool("load", false, "quic-pingpong: a 64 KiB bulk stream on the same connection meanwhile")
	dgram := fs.Int("dgram", defaultDatagram, "ceiling-udp: datagram payload bytes")
	batch := fs.Int("batch", 64, "ceiling-udp: datagrams per send call (GSO: at most 64 and 65507 bytes) and per recvmmsg")
	send := fs.String("send", "gso", "ceiling-udp: gso (sendmsg + UDP_SEGMENT, as quic-go) or mmsg (sendmmsg)")
	if len(args) < 1 {
		return errors.New("usage: aqbench go quic-msg|quic-par|quic-fanout|quic-pingpong|quic-dial|tls-msg|ceiling-aes|ceiling-udp [flags]")
	}
	scenario := args[0]
	fs.Parse(args[1:])
	if *dur <= 0 {
		return fmt.Errorf("-dur %v <= 0", *dur)
	}
	// The ceilings need no certificates.
	switch scenario {
	case "ceiling-aes":
		m, err := runCeilingAES(*dur)
		if err != nil {
			return fmt.Errorf("%s: %w", scenario, err)
		}
		return printImplResult(scenario, "ceiling", m)
	case "ceiling-udp":
		m, err := runCeilingUDP(*send, *dgram, *batch, *dur)
		if err != nil {
			return fmt.Errorf("%s: %w", scenario, err)
		}
		return printImplResult(scenario, "ceiling", m)
	}
	c, err := loadCreds(*certs)
	if err != nil {
		return err
	}
	var m map[string]float64
	switch scenario {
	case "quic-msg":
		m, err = runQUICStream(c, *size, *dur, *writer)
	case "tls-msg":
		m, err = runTLSStream(c, *size, *dur, *writer)
	case "quic-par":
		m, err = runQUICPar(c, *streams, *size, *dur, *writer)
	case "quic-fanout":
		m, err = runQUICFanout(c, *peers, *size, *dur, *writer)
	case "quic-pingpong":
		m, err = runQUICPingPong(c, *size, *dur, *load)
	case "quic-dial":
		m, err = runQUICDial(c, *iters)
	default:
		return fmt.Errorf("unknown scenario %q", scenario)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", scenario, err)
	}
	return printResult(scenario, m)
}
