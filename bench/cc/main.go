// Command cc benchmarks congestion control (`make bench-cc`):
// BBRv2 against NewReno, both driving core.Endpoints through the netsim
// proxy with a bandwidth limit, in one process.
//
// Scenarios (defaults: 50 Mbit/s, 20 ms each way = 40 ms round trip, a
// router queue of one BDP):
//
//   - lossy: 1% random loss in both directions; target bbr2 >= 2x reno
//   - clean: no random loss; target bbr2 within 10% of reno
//   - fair:  two bbr2 senders to one receiver through one shared
//     bottleneck (netsim Link.SharedBottleneck); target: each flow gets at
//     least a third of the bottleneck
//
// Each measurement is one sender that sends 64 KiB messages on one channel
// for warmup+dur; goodput is the payload the receiver got during the last
// dur seconds (the warmup covers the handshake and slow start). Reno and
// bbr2 alternate, in an order that flips every round, and every claim is
// the median of per-round ratios, so drift of a shared machine hits both.
//
// The program needs the quic-go congestion hook (build tag aranya_cc,
// against the go.work that qgpatch writes); after every run it checks that
// both endpoints report Stats().CongestionControl equal to the algorithm
// under test and fails otherwise, so a build without the hook cannot
// produce a result.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"github.com/aranya-quic/aranya-quic/bench/internal/machine"
	"io"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aranya-quic/aranya-quic/core"
	"github.com/aranya-quic/aranya-quic/core/certgen"
	"github.com/aranya-quic/aranya-quic/tests/netsim"
)

type options struct {
	rounds     int
	warmup     time.Duration
	dur        time.Duration
	fairDur    time.Duration
	mbit       float64
	oneWay     time.Duration
	loss       float64
	queueBDP   float64
	msgSize    int
	scenarios  []string
	out        string
	seed       uint64
	verbose    bool
	sampleStep time.Duration
	stagger    time.Duration
	diag       time.Duration
}

func main() {
	var o options
	var scen string
	long := flag.Bool("long", false, "longer runs: 5 rounds, 15 s per run, 30 s fairness runs (about 11 min)")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds; claims are medians of per-round ratios")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "sending time before goodput is counted")
	flag.DurationVar(&o.dur, "dur", 5*time.Second, "counted time of a lossy/clean run")
	flag.DurationVar(&o.fairDur, "fair-dur", 10*time.Second, "counted time of a fairness run")
	flag.Float64Var(&o.mbit, "mbit", 50, "bottleneck rate, Mbit/s")
	flag.DurationVar(&o.oneWay, "delay", 20*time.Millisecond, "one-way delay (round trip is twice this)")
	flag.Float64Var(&o.loss, "loss", 0.01, "random loss of the lossy path, per datagram, each direction")
	flag.Float64Var(&o.queueBDP, "queue-bdp", 1, "router queue, in bandwidth-delay products")
	flag.IntVar(&o.msgSize, "msg", 64<<10, "message size, bytes")
	flag.DurationVar(&o.stagger, "stagger", 3*time.Second, "fair-late: the second flow starts this long after the first")
	flag.StringVar(&scen, "scenarios", "lossy,clean,fair,fair-late", "comma-separated: lossy, clean, fair, fair-late")
	flag.StringVar(&o.out, "out", "bench/results/cc.json", "JSON results ('' for none)")
	flag.Uint64Var(&o.seed, "seed", 7, "netsim seed (each run derives its own)")
	flag.BoolVar(&o.verbose, "v", false, "per-interval goodput of every run on stderr")
	flag.DurationVar(&o.diag, "diag", 0, "diagnostic: print the bbr2 senders' model this often (bbr2 runs only; writes no JSON)")
	flag.Parse()
	if *long {
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["rounds"] {
			o.rounds = 5
		}
		if !set["dur"] {
			o.dur = 15 * time.Second
		}
		if !set["fair-dur"] {
			o.fairDur = 30 * time.Second
		}
	}
	o.scenarios = strings.Split(scen, ",")
	o.sampleStep = 500 * time.Millisecond
	if o.diag > 0 {
		o.out = ""
		diagInstall(o.diag)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench-cc:", err)
		os.Exit(1)
	}
}

// flowResult is one sender's share of a run.
type flowResult struct {
	Bytes       int64   `json:"bytes"`         // payload counted in the window
	GoodputMbit float64 `json:"goodput_mbit"`  // payload rate in the window
	ShareOfLink float64 `json:"share_of_link"` // goodput / bottleneck rate
	// Per-interval goodput (Mbit/s) over the whole run, warmup included.
	Series []float64 `json:"series_mbit"`
}

// runResult is one measurement.
type runResult struct {
	Scenario string       `json:"scenario"`
	Algo     string       `json:"algo"`
	Round    int          `json:"round"`
	Flows    []flowResult `json:"flows"`
	// TotalMbit is the sum of the flows' goodput.
	TotalMbit float64 `json:"total_mbit"`
	// CC is what the endpoints' Stats().CongestionControl said, sender(s)
	// then receiver.
	CC    []string     `json:"congestion_control_reported"`
	Proxy netsim.Stats `json:"proxy"`
}

type claim struct {
	Name      string    `json:"name"`
	Target    string    `json:"target"`
	PerRound  []float64 `json:"per_round"`
	Median    float64   `json:"median"`
	Min       float64   `json:"min"`
	Met       bool      `json:"met"`
	Statement string    `json:"statement"`
}

type report struct {
	Date     string            `json:"date"`
	Machine  map[string]string `json:"machine"`
	Settings map[string]any    `json:"settings"`
	Claims   []claim           `json:"claims"`
	Runs     []runResult       `json:"runs"`
}

func run(o options) error {
	if !core.CongestionHookAvailable() {
		return errors.New("this build has no quic-go congestion hook: both runs would be NewReno. Build with -tags aranya_cc under the go.work from `go run ./core/congestion/qgpatch -out build/quicgo` (make bench-cc does)")
	}
	ca, err := certgen.NewCA("bench-cc CA")
	if err != nil {
		return err
	}
	peers := map[string]*certgen.Peer{}
	for _, n := range []string{"sender1", "sender2", "receiver"} {
		if peers[n], err = ca.Issue(n, certgen.PeerOptions{}); err != nil {
			return err
		}
	}
	h := &harness{o: o, ca: ca, peers: peers}
	rep := report{
		Date:    time.Now().UTC().Format(time.RFC3339),
		Machine: machineInfo(),
		Settings: map[string]any{
			"rounds": o.rounds, "warmup_s": o.warmup.Seconds(), "dur_s": o.dur.Seconds(),
			"fair_dur_s": o.fairDur.Seconds(), "bottleneck_mbit": o.mbit,
			"rtt_ms": float64(2*o.oneWay) / 1e6, "lossy_loss": o.loss,
			"queue_bdp": o.queueBDP, "queue_bytes": h.queueBytes(), "msg_bytes": o.msgSize,
			"scenarios": o.scenarios, "seed": o.seed,
		},
	}
	has := func(s string) bool { return slices.Contains(o.scenarios, s) }
	ratio := map[string][]float64{}
	start := time.Now()
	for r := 0; r < o.rounds; r++ {
		algos := []string{core.CongestionReno, core.CongestionBBR2}
		if r%2 == 1 {
			algos = []string{core.CongestionBBR2, core.CongestionReno}
		}
		for _, sc := range []string{"lossy", "clean"} {
			if !has(sc) {
				continue
			}
			got := map[string]float64{}
			for _, a := range algos {
				res, err := h.measure(sc, a, r, 1)
				if err != nil {
					return fmt.Errorf("%s %s round %d: %w", sc, a, r, err)
				}
				rep.Runs = append(rep.Runs, res)
				got[a] = res.TotalMbit
			}
			ratio[sc] = append(ratio[sc], got[core.CongestionBBR2]/got[core.CongestionReno])
		}
		for _, sc := range []string{"fair", "fair-late"} {
			if !has(sc) {
				continue
			}
			res, err := h.measure(sc, core.CongestionBBR2, r, 2)
			if err != nil {
				return fmt.Errorf("%s round %d: %w", sc, r, err)
			}
			rep.Runs = append(rep.Runs, res)
			ratio[sc] = append(ratio[sc], min(res.Flows[0].ShareOfLink, res.Flows[1].ShareOfLink))
			ratio[sc+"-total"] = append(ratio[sc+"-total"], res.TotalMbit/o.mbit)
		}
	}
	rep.Machine["loadavg_end"] = machine.Loadavg()
	rep.Settings["wall_s"] = time.Since(start).Seconds()
	if v := ratio["lossy"]; v != nil {
		rep.Claims = append(rep.Claims, mkClaim("lossy: bbr2 / reno goodput", ">= 2", v, func(x float64) bool { return x >= 2 },
			fmt.Sprintf("%g Mbit/s, %v RTT, %g%% loss: BBRv2 goodput / NewReno goodput", o.mbit, 2*o.oneWay, o.loss*100)))
	}
	if v := ratio["clean"]; v != nil {
		rep.Claims = append(rep.Claims, mkClaim("clean: bbr2 / reno goodput", ">= 0.9", v, func(x float64) bool { return x >= 0.9 },
			fmt.Sprintf("%g Mbit/s, %v RTT, no random loss: BBRv2 goodput / NewReno goodput", o.mbit, 2*o.oneWay)))
	}
	if v := ratio["fair"]; v != nil {
		rep.Claims = append(rep.Claims, mkClaim("fair: smaller bbr2 flow / bottleneck", ">= 0.333", v, func(x float64) bool { return x >= 1.0/3 },
			"two BBRv2 flows through one shared bottleneck: the smaller flow's goodput / bottleneck rate"))
		rep.Claims = append(rep.Claims, mkClaim("fair: both flows / bottleneck", "(info)", ratio["fair-total"], nil,
			"two BBRv2 flows: sum of goodput / bottleneck rate"))
	}
	if v := ratio["fair-late"]; v != nil {
		rep.Claims = append(rep.Claims, mkClaim("fair-late: smaller bbr2 flow / bottleneck", ">= 0.333", v, func(x float64) bool { return x >= 1.0/3 },
			fmt.Sprintf("as fair, but the second flow starts %v after the first: the smaller flow's goodput / bottleneck rate", o.stagger)))
		rep.Claims = append(rep.Claims, mkClaim("fair-late: both flows / bottleneck", "(info)", ratio["fair-late-total"], nil,
			"two BBRv2 flows, staggered: sum of goodput / bottleneck rate"))
	}
	printTable(os.Stdout, &rep)
	if o.out != "" {
		b, err := json.MarshalIndent(&rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(o.out, append(b, '\n'), 0o644); err != nil {
			return err
		}
		fmt.Fprintln(os.Stderr, "bench-cc: wrote", o.out)
	}
	return nil
}

func mkClaim(name, target string, v []float64, ok func(float64) bool, stmt string) claim {
	c := claim{Name: name, Target: target, PerRound: v, Median: median(v), Min: slices.Min(v), Statement: stmt}
	if ok != nil {
		c.Met = ok(c.Median)
	} else {
		c.Met = true
	}
	return c
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func printTable(w io.Writer, rep *report) {
	fmt.Fprintln(w, "| claim | target | median | min | per round | met |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, c := range rep.Claims {
		pr := make([]string, len(c.PerRound))
		for i, x := range c.PerRound {
			pr[i] = fmt.Sprintf("%.2f", x)
		}
		met := "yes"
		if !c.Met {
			met = "**no**"
		}
		if c.Target == "(info)" {
			met = ""
		}
		fmt.Fprintf(w, "| %s | %s | %.2f | %.2f | %s | %s |\n", c.Name, c.Target, c.Median, c.Min, strings.Join(pr, " "), met)
	}
	// Medians of the absolute figures, for orientation only.
	type key struct{ sc, algo string }
	abs := map[key][]float64{}
	drops := map[key][]float64{}
	for _, r := range rep.Runs {
		k := key{r.Scenario, r.Algo}
		abs[k] = append(abs[k], r.TotalMbit)
		if r.Proxy.Received > 0 {
			drops[k] = append(drops[k], float64(r.Proxy.QueueDropped)/float64(r.Proxy.Received)*100)
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| scenario | algo | median goodput Mbit/s | median queue drops % of datagrams |")
	fmt.Fprintln(w, "|---|---|---|---|")
	for _, sc := range []string{"lossy", "clean", "fair", "fair-late"} {
		for _, a := range []string{core.CongestionReno, core.CongestionBBR2} {
			k := key{sc, a}
			if abs[k] == nil {
				continue
			}
			d := 0.0
			if drops[k] != nil {
				d = median(drops[k])
			}
			fmt.Fprintf(w, "| %s | %s | %.1f | %.2f |\n", sc, a, median(abs[k]), d)
		}
	}
	m := rep.Machine
	fmt.Fprintf(w, "\n%v rounds; %s; %s CPUs, %s, %s; load %s -> %s\n", rep.Settings["rounds"], rep.Date, m["nproc"], m["cpu_model"], m["go"], m["loadavg_start"], m["loadavg_end"])
}

type harness struct {
	o     options
	ca    *certgen.CA
	peers map[string]*certgen.Peer
	runN  uint64
}

func (h *harness) rateBytes() float64 { return h.o.mbit * 1e6 / 8 }

// queueBytes is the router queue: queueBDP bandwidth-delay products.
func (h *harness) queueBytes() int {
	return int(h.o.queueBDP * h.rateBytes() * (2 * h.o.oneWay).Seconds())
}

func (h *harness) endpoint(name, algo string) (*core.Endpoint, error) {
	p := h.peers[name]
	return core.NewEndpoint(core.Config{
		BindAddr:          "127.0.0.1:0",
		CertPEM:           p.CertPEM,
		KeyPEM:            p.KeyPEM,
		CAPEM:             h.ca.CertPEM,
		CongestionControl: algo,
		DrainTimeout:      200 * time.Millisecond,
		IdleTimeout:       10 * time.Second,
		SendTimeout:       -1, // the run's context bounds every Send
	})
}

// measure runs one scenario with nflows senders into one receiver.
func (h *harness) measure(sc, algo string, round, nflows int) (runResult, error) {
	o := h.o
	runtime.GC()
	h.runN++
	link := netsim.Link{
		Delay:            o.oneWay,
		Bandwidth:        int(h.rateBytes()),
		QueueBytes:       h.queueBytes(),
		SharedBottleneck: true, // one flow: same as per pair; two: they compete
	}
	if sc == "lossy" {
		link.Loss = o.loss
	}
	dur := o.dur
	var stagger time.Duration // sender i starts i*stagger after the first
	switch sc {
	case "fair":
		dur = o.fairDur
	case "fair-late":
		dur, stagger = o.fairDur, o.stagger
	}
	px := netsim.New(o.seed*1000+h.runN, link)
	defer px.Close()

	recv, err := h.endpoint("receiver", algo)
	if err != nil {
		return runResult{}, err
	}
	defer recv.Close()
	recvAddr := px.MustAdd(recv.LocalAddr())
	senders := make([]*core.Endpoint, nflows)
	proxyOf := map[netip.AddrPort]int{}
	for i := range senders {
		if senders[i], err = h.endpoint(fmt.Sprintf("sender%d", i+1), algo); err != nil {
			return runResult{}, err
		}
		defer senders[i].Close()
		proxyOf[px.MustAdd(senders[i].LocalAddr())] = i
		diagAdd(senders[i].LocalAddr().String(), i)
	}

	// Connect every sender first (one small message each), so the clock
	// starts with established connections.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var team core.TeamID
	buf := make([]byte, o.msgSize+1024)
	for _, s := range senders {
		if err := s.Send(ctx, recvAddr, team, "cc", []byte("hello")); err != nil {
			return runResult{}, fmt.Errorf("connect: %w", err)
		}
		if _, _, err := recv.ReceiveContext(ctx, buf); err != nil {
			return runResult{}, fmt.Errorf("connect: %w", err)
		}
	}

	start := time.Now()
	countFrom := start.Add(time.Duration(nflows-1)*stagger + o.warmup)
	end := countFrom.Add(dur)
	nSamples := int((end.Sub(start) + o.sampleStep - 1) / o.sampleStep)
	series := make([][]int64, nflows)
	for i := range series {
		series[i] = make([]int64, nSamples)
	}
	counted := make([]int64, nflows)
	var rerr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the receiver
		defer wg.Done()
		rctx, rcancel := context.WithDeadline(context.Background(), end)
		defer rcancel()
		for {
			ch, n, err := recv.ReceiveContext(rctx, buf)
			now := time.Now()
			if err != nil {
				if !now.Before(end) || rctx.Err() != nil {
					return
				}
				rerr = err
				return
			}
			i, ok := proxyOf[ch.Addr]
			if !ok {
				rerr = fmt.Errorf("message from unknown address %v", ch.Addr)
				return
			}
			if k := int(now.Sub(start) / o.sampleStep); k < nSamples {
				series[i][k] += int64(n)
			}
			if !now.Before(countFrom) && now.Before(end) {
				counted[i] += int64(n)
			}
		}
	}()
	serrs := make([]error, nflows)
	for i, s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sctx, scancel := context.WithDeadline(context.Background(), end)
			defer scancel()
			msg := make([]byte, o.msgSize)
			if d := time.Duration(i) * stagger; d > 0 {
				time.Sleep(d)
			}
			for sctx.Err() == nil {
				if err := s.Send(sctx, recvAddr, team, "cc", msg); err != nil {
					if sctx.Err() == nil {
						serrs[i] = err
					}
					return
				}
			}
		}()
	}
	wg.Wait()
	if rerr != nil {
		return runResult{}, fmt.Errorf("receiver: %w", rerr)
	}
	for _, e := range serrs {
		if e != nil {
			return runResult{}, fmt.Errorf("sender: %w", e)
		}
	}

	res := runResult{Scenario: sc, Algo: algo, Round: round, Proxy: px.Stats()}
	for _, s := range senders {
		res.CC = append(res.CC, s.Stats().CongestionControl)
	}
	res.CC = append(res.CC, recv.Stats().CongestionControl)
	for _, got := range res.CC {
		if got != algo && o.diag == 0 {
			return res, fmt.Errorf("endpoints report congestion control %q, want %q for every one: the hook is not in place, refusing to report", res.CC, algo)
		}
	}
	for i := range senders {
		f := flowResult{Bytes: counted[i]}
		f.GoodputMbit = float64(counted[i]) * 8 / dur.Seconds() / 1e6
		f.ShareOfLink = f.GoodputMbit / o.mbit
		for _, b := range series[i] {
			f.Series = append(f.Series, round2(float64(b)*8/o.sampleStep.Seconds()/1e6))
		}
		res.Flows = append(res.Flows, f)
		res.TotalMbit += f.GoodputMbit
	}
	shares := make([]string, len(res.Flows))
	for i, f := range res.Flows {
		shares[i] = fmt.Sprintf("%.1f", f.GoodputMbit)
	}
	fmt.Fprintf(os.Stderr, "round %d %-5s %-4s goodput %s Mbit/s  (proxy: %d lost, %d queue-dropped of %d)\n",
		round, sc, algo, strings.Join(shares, " + "), res.Proxy.Lost, res.Proxy.QueueDropped, res.Proxy.Received)
	if o.verbose {
		for i, f := range res.Flows {
			fmt.Fprintf(os.Stderr, "  flow %d per %v: %v\n", i, o.sampleStep, f.Series)
		}
	}
	return res, nil
}

func round2(x float64) float64 { return float64(int64(x*100+0.5)) / 100 }

func machineInfo() map[string]string {
	m := machine.Info()
	m["cc_hook"] = strconv.FormatBool(core.CongestionHookAvailable())
	return m
}
