package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/aranya-quic/aranya-quic/core"
)

// The engine (core) driven from Go in-process, without the C API: the
// same scenarios as bench/c, to split what cgo and the capi layer cost from
// what the engine costs. Diagnostic: `aqbench run -engine` adds them.

func engineEndpoint(dir, name, cc string) (*core.Endpoint, error) {
	rd := func(f string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			panic(err)
		}
		return b
	}
	return core.NewEndpoint(core.Config{
		BindAddr:          "127.0.0.1:0",
		CertPEM:           rd(name + ".crt"),
		KeyPEM:            rd(name + ".key"),
		CAPEM:             rd("ca.pem"),
		CongestionControl: cc,
	})
}

func engineMain(args []string) error {
	fs := flag.NewFlagSet("engine", flag.ExitOnError)
	certs := fs.String("certs", "build/bench/certs", "examples/certgen output")
	size := fs.Int("size", 64, "payload bytes")
	dur := durationFlag(fs, "dur", time.Second, "how long (1s, 500ms, or seconds: 1, 0.5)")
	cc := fs.String("cc", "", "congestion control: reno or bbr2 (default: what the shipped library uses: bbr2 in a build with the quic-go hook)")
	if len(args) < 1 {
		return errors.New("usage: aqbench engine msg|pingpong [flags]")
	}
	scenario := args[0]
	fs.Parse(args[1:])
	if *cc == "" {
		*cc = defaultCongestion()
	}
	if *cc == core.CongestionBBR2 && !core.CongestionHookAvailable() {
		return errors.New("-cc=bbr2 needs the quic-go congestion hook, which this aqbench lacks: build it with make bench-build (patched quic-go, tag aranya_cc)")
	}
	a, err := engineEndpoint(*certs, "alice", *cc)
	if err != nil {
		return err
	}
	defer a.Close()
	b, err := engineEndpoint(*certs, "bob", *cc)
	if err != nil {
		return err
	}
	defer b.Close()
	ctx := context.Background()
	var team core.TeamID
	msg := make([]byte, *size)
	buf := make([]byte, max(*size, 65536))
	var m map[string]float64
	switch scenario {
	case "msg":
		if err := a.Send(ctx, b.LocalAddr(), team, "bench", msg[:min(*size, 64)]); err != nil {
			return err
		}
		if _, _, err := b.ReceiveContext(ctx, buf); err != nil {
			return err
		}
		var total atomic.Int64
		total.Store(-1)
		type rr struct {
			n, bytes int64
			last     time.Time
			err      error
		}
		done := make(chan rr, 1)
		cpu := startCPU()
		start := time.Now()
		go func() {
			var r rr
			for {
				if t := total.Load(); t >= 0 && r.n >= t {
					break
				}
				rctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
				_, n, err := b.ReceiveContext(rctx, buf)
				cancel()
				if errors.Is(err, core.ErrTimeout) {
					continue
				}
				if err != nil {
					r.err = err
					break
				}
				r.n++
				r.bytes += int64(n)
				r.last = time.Now()
			}
			cpu.stop()
			done <- r
		}()
		deadline := start.Add(*dur)
		var sent int64
		every := 64
		if *size >= 4096 {
			every = 1
		}
		for i := 0; ; i++ {
			if err := a.Send(ctx, b.LocalAddr(), team, "bench", msg); err != nil {
				return err
			}
			sent++
			if i%every == 0 && time.Now().After(deadline) {
				break
			}
		}
		total.Store(sent)
		r := <-done
		if r.err != nil {
			return r.err
		}
		s := r.last.Sub(start).Seconds()
		m = map[string]float64{"msgs_per_s": float64(r.n) / s, "gbit_s": float64(r.bytes) * 8 / s / 1e9, "msgs": float64(r.n), "seconds": s, "cpu_ns_per_msg": cpu.perMsg(r.n)}
	case "pingpong":
		go func() {
			for {
				ch, n, err := b.ReceiveContext(ctx, buf)
				if err != nil {
					return
				}
				if err := b.Send(ctx, ch.Addr, ch.TeamID, ch.Label, buf[:n]); err != nil {
					return
				}
			}
		}()
		in := make([]byte, 65536)
		var rtts []time.Duration
		for i := 0; i < 10; i++ {
			if err := a.Send(ctx, b.LocalAddr(), team, "ping", msg); err != nil {
				return err
			}
			if _, _, err := a.ReceiveContext(ctx, in); err != nil {
				return err
			}
		}
		deadline := time.Now().Add(*dur)
		for time.Now().Before(deadline) {
			t := time.Now()
			if err := a.Send(ctx, b.LocalAddr(), team, "ping", msg); err != nil {
				return err
			}
			if _, _, err := a.ReceiveContext(ctx, in); err != nil {
				return err
			}
			rtts = append(rtts, time.Since(t))
		}
		m = latencyMetrics(rtts)
	default:
		return fmt.Errorf("unknown scenario %q", scenario)
	}
	// What the connections really ran, read back from the engine, so a
	// result line cannot claim a controller it did not use.
	m["cc_bbr2"] = 0
	if a.Stats().CongestionControl == core.CongestionBBR2 {
		m["cc_bbr2"] = 1
	}
	return printResult("engine-"+scenario, m)
}

// defaultCongestion is the controller the shipped library runs: BBRv2
// when this binary has the quic-go hook (make bench-build builds it like
// make lib), NewReno otherwise, with a warning, since then the engine
// figures are not the shipped library's.
func defaultCongestion() string {
	if core.CongestionHookAvailable() {
		return core.CongestionBBR2
	}
	fmt.Fprintln(os.Stderr, "aqbench engine: built without the quic-go congestion hook: NewReno, unlike the shipped library (build with make bench-build)")
	return core.CongestionReno
}
