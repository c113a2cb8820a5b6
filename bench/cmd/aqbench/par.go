package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
)

// The many-stream baselines: quic-par (one connection, one stream and one
// producer goroutine per stream) and quic-fanout (one sending socket, one
// connection to each of many receiving sockets).

// recvTally collects what many stream readers got; the last reader to see
// its stream end stops the clock and the CPU meter.
type recvTally struct {
	msgs, bytes atomic.Int64
	left        atomic.Int32
	end         time.Time
	cpu         cpuMeter
	errs        chan error
}

func newRecvTally(streams int, cpu cpuMeter) *recvTally {
	t := &recvTally{cpu: cpu, errs: make(chan error, streams)}
	t.left.Store(int32(streams))
	return t
}

// read counts the frames of one stream until its end.
func (t *recvTally) read(r io.Reader, maxLen int) {
	var msgs, bytes int64
	err := readFrames(r, maxLen, func(n int) {
		msgs++
		bytes += int64(n)
	})
	t.msgs.Add(msgs)
	t.bytes.Add(bytes)
	if t.left.Add(-1) == 0 {
		t.end = time.Now()
		t.cpu.stop()
	}
	t.errs <- err
}

// wait collects the readers' results; the tally's end is valid after it.
func (t *recvTally) wait(streams int) error {
	var errs []error
	for i := 0; i < streams; i++ {
		if err := <-t.errs; err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (t *recvTally) result(start time.Time) streamResult {
	return streamResult{msgs: t.msgs.Load(), bytes: t.bytes.Load(), elapsed: t.end.Sub(start), cpu: t.cpu}
}

// runQUICPar: streams producer goroutines, each sending size-byte frames
// on its own unidirectional stream of one connection for dur; the peer
// reads every stream.
func runQUICPar(c *creds, streams, size int, dur time.Duration, writer string) (map[string]float64, error) {
	if streams < 1 {
		return nil, fmt.Errorf("-streams %d < 1", streams)
	}
	ctx, cancel := context.WithTimeout(context.Background(), dur+30*time.Second)
	defer cancel()
	p, err := dialQUICPair(ctx, c)
	if err != nil {
		return nil, err
	}
	defer p.close()
	frame := appendFrame(nil, make([]byte, size))
	senders := make([]frameSender, streams)
	for i := range senders {
		w, err := p.cli.OpenUniStreamSync(ctx)
		if err != nil {
			return nil, err
		}
		if senders[i], err = newSender(writer, w, len(frame)); err != nil {
			return nil, err
		}
	}
	tally := newRecvTally(streams, startCPU())
	start := time.Now()
	// A stream reaches the peer with its first data, so accepting runs
	// alongside the producers.
	go func() {
		for i := 0; i < streams; i++ {
			r, err := p.srv.AcceptUniStream(ctx)
			if err != nil {
				for ; i < streams; i++ {
					tally.errs <- err
				}
				return
			}
			go tally.read(r, size)
		}
	}()
	sendErrs := make(chan error, streams)
	deadline := start.Add(dur)
	for _, s := range senders {
		go func() { sendErrs <- produce(s, frame, deadline, checkEvery(size)) }()
	}
	for range senders {
		if err := <-sendErrs; err != nil {
			return nil, err
		}
	}
	if err := tally.wait(streams); err != nil {
		return nil, err
	}
	m := tally.result(start).metrics()
	packetMetrics(m, p.cli)
	return m, nil
}

// runQUICFanout: one sending quic.Transport (one UDP socket) dials peers
// listeners, each its own quic.Transport and socket, opens one stream to
// each, and ONE producer goroutine sends size-byte frames round-robin
// across them for dur, like one application thread sending to many peers
// through one endpoint. With -writer=expert each stream has its own
// writer goroutine, so the producer only queues; with naive the producer
// writes every frame itself.
func runQUICFanout(c *creds, peers, size int, dur time.Duration, writer string) (map[string]float64, error) {
	if peers < 1 {
		return nil, fmt.Errorf("-peers %d < 1", peers)
	}
	ctx, cancel := context.WithTimeout(context.Background(), dur+30*time.Second)
	defer cancel()
	type peer struct {
		tr  *quic.Transport
		ln  *quic.Listener
		cli *quic.Conn
	}
	ps := make([]*peer, peers)
	defer func() {
		for _, p := range ps {
			if p == nil {
				continue
			}
			if p.cli != nil {
				p.cli.CloseWithError(0, "")
			}
			p.ln.Close()
			p.tr.Close()
		}
	}()
	for i := range ps {
		tr, ln, err := listenQUIC(c)
		if err != nil {
			return nil, err
		}
		ps[i] = &peer{tr: tr, ln: ln}
	}
	cliTr, err := newTransport()
	if err != nil {
		return nil, err
	}
	defer cliTr.Close()
	var wg sync.WaitGroup
	dialErrs := make([]error, peers)
	for i, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.cli, dialErrs[i] = cliTr.Dial(ctx, p.tr.Conn.LocalAddr(), c.client, quicConf())
		}()
	}
	wg.Wait()
	if err := errors.Join(dialErrs...); err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	frame := appendFrame(nil, make([]byte, size))
	senders := make([]frameSender, peers)
	for i, p := range ps {
		w, err := p.cli.OpenUniStreamSync(ctx)
		if err != nil {
			return nil, err
		}
		if senders[i], err = newSender(writer, w, len(frame)); err != nil {
			return nil, err
		}
	}
	tally := newRecvTally(peers, startCPU())
	start := time.Now()
	for _, p := range ps {
		go func() {
			conn, err := p.ln.Accept(ctx)
			if err != nil {
				tally.errs <- fmt.Errorf("accept: %w", err)
				return
			}
			r, err := conn.AcceptUniStream(ctx)
			if err != nil {
				tally.errs <- fmt.Errorf("accept stream: %w", err)
				return
			}
			tally.read(r, size)
		}()
	}
	deadline := start.Add(dur)
	sendErr := func() error {
		for i := 0; ; i++ {
			if err := senders[i%peers].Send(frame); err != nil {
				return err
			}
			if i%64 == 0 && time.Now().After(deadline) {
				break
			}
		}
		var errs []error
		for _, s := range senders {
			errs = append(errs, s.Close())
		}
		return errors.Join(errs...)
	}()
	if sendErr != nil {
		return nil, sendErr
	}
	if err := tally.wait(peers); err != nil {
		return nil, err
	}
	m := tally.result(start).metrics()
	conns := make([]*quic.Conn, peers)
	for i, p := range ps {
		conns[i] = p.cli
	}
	packetMetrics(m, conns...)
	m["peers"] = float64(peers)
	return m, nil
}
