package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aranya-quic/aranya-quic/bench/internal/machine"
)

// A job is one measurement: one process run of one driver.
type job struct {
	Key   string   // "lib/msg64", "quic-go/msg64-expert", ...
	Group string   // jobs of a group run back to back, in rotating order
	Impl  string   // aranya-quic, quic-go, tls-tcp, quinn, ...
	Argv  []string // the command
	Once  bool     // run in the first round only (unless -every-round)
	Est   float64  // expected wall seconds, for the estimate printed at start
	Env   []string // added to the environment (KEY=value)
}

// The sections of the report; the docs render one table per section, in
// this order.
const (
	secRate    = "Message rate, throughput and CPU"
	secLatency = "Latency"
	secBind    = "Bindings and receive paths"
	secCeiling = "Ceilings of this machine, and each scenario as a fraction of them"
	secScale   = "Fan-in, churn and memory"
	secDiag    = "Diagnostics: the engine from Go, without the C API"
)

var sectionOrder = []string{secRate, secLatency, secBind, secCeiling, secScale, secDiag}

// A comparison is one row of the report: the library against a baseline
// (a ratio), or one value.
type comparison struct {
	Name      string  `json:"name"`
	Section   string  `json:"section,omitempty"`
	Num       string  `json:"num"`                  // job key of the library side
	Den       string  `json:"den"`                  // job key of the baseline ("" for a value)
	Metric    string  `json:"metric"`               // metric of Num (and of Den unless DenMetric)
	DenMetric string  `json:"den_metric,omitempty"` // the baseline's metric when it differs (ceilings)
	Better    string  `json:"better"`               // "higher" or "lower": which way the result is good
	Op        string  `json:"op"`                   // ">=", "<=", or "" (report only)
	Target    float64 `json:"target"`               // for Op
	Unit      string  `json:"unit"`                 // "x" for ratios
	Note      string  `json:"note,omitempty"`

	// Filled from the run.
	Result        float64   `json:"result"`           // median of per-round ratios (or the value)
	LegacyRatio   float64   `json:"ratio,omitempty"`  // what reports before "result" called it
	RatioOfMedian float64   `json:"ratio_of_medians"` // median(num) / median(den)
	RoundRatios   []float64 `json:"round_ratios,omitempty"`
	NumMedian     float64   `json:"num_median"`
	DenMedian     float64   `json:"den_median,omitempty"`
	Met           *bool     `json:"met,omitempty"`
	// Score is the result relative to the target in the good direction
	// (result/target when higher is better, target/result when lower is):
	// >= 1 means met, whichever way the metric points. 0 when there is no
	// target or no finite score (a target of 0).
	Score   float64 `json:"score,omitempty"`
	Skipped string  `json:"skipped,omitempty"`
}

type sample struct {
	Round   int                `json:"round"`
	Metrics map[string]float64 `json:"metrics"`
	Seconds float64            `json:"wall_seconds"`
}

type report struct {
	Date        string                        `json:"date"`
	Machine     map[string]string             `json:"machine"`
	Settings    map[string]any                `json:"settings"`
	Comparisons []*comparison                 `json:"comparisons"`
	Medians     map[string]map[string]float64 `json:"medians"`
	Samples     map[string][]sample           `json:"samples"`
	Commands    map[string][]string           `json:"commands"`
	Failures    []string                      `json:"failures,omitempty"`
	WallSeconds float64                       `json:"wall_seconds"`
}

// lowerIsBetter names the metrics where less is the good direction.
func lowerIsBetter(metric string) bool {
	switch metric {
	case "p50_us", "p99_us", "cpu_ns_per_msg", "kib_per_conn", "lost", "loss_fraction", "peak_over_limit_plus_64", "peak_rss_mib":
		return true
	}
	return false
}

// runConfig is what the job list depends on.
type runConfig struct {
	self, binC, binQuinn, python, pyScript, lib, certs string
	dur, churnDur                                      float64
	iters, batch                                       int
	everyRound                                         bool
}

func runMain(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	rounds := fs.Int("rounds", 5, "rounds; each runs every job once, the jobs of a group in an order that rotates every round")
	dur := fs.Float64("dur", 0.8, "seconds per throughput or latency measurement")
	iters := fs.Int("iters", 20, "new connections per first-message measurement")
	churnDur := fs.Float64("churn-dur", 1.5, "seconds of eviction churn")
	batch := fs.Int("batch", 64, "messages per batch call in the batch scenarios (C and Python)")
	everyRound := fs.Bool("every-round", false, "run the memory scenarios every round (else once)")
	binC := fs.String("c", "build/bench/aqbench-c", "the C driver of the library")
	binQuinn := fs.String("quinn", "build/bench/cargo/release/quinnbench", "the quinn baseline and Rust binding driver (skipped if missing)")
	python := fs.String("python", "python3", "Python interpreter for the binding's scenario (skipped if missing)")
	pyScript := fs.String("py-script", "bench/python/aqbench.py", "the Python binding's driver (skipped if missing)")
	lib := fs.String("lib", "build/libaranya_quic.so", "the library, for the Python driver")
	certs := fs.String("certs", "build/bench/certs", "examples/certgen output")
	out := fs.String("out", "bench/results/latest.json", "JSON report")
	chart := fs.String("chart", "bench/results/ratios.png", "chart of the targets (\"\" for none)")
	docs := fs.String("docs", "auto", "documents whose generated blocks to rewrite from the report (comma-separated); "+
		"auto: "+defaultDocs+" when -out is "+defaultReport+"; \"\" for none")
	ccIn := fs.String("cc-in", defaultCCReport, "congestion-control report the documents' cc blocks come from")
	timeout := fs.Duration("job-timeout", 2*time.Minute, "per-job time limit")
	dryRun := fs.Bool("n", false, "print the jobs and the time estimate, run nothing")
	fs.Parse(args)

	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("own path: %w", err)
	}
	cfg := runConfig{
		self: self, binC: *binC, binQuinn: *binQuinn, python: *python, pyScript: *pyScript, lib: *lib, certs: *certs,
		dur: *dur, churnDur: *churnDur, iters: *iters, batch: *batch, everyRound: *everyRound,
	}
	jobs, missing := availableJobs(cfg, allJobs(cfg))
	for _, why := range sortedValues(missing) {
		fmt.Fprintln(os.Stderr, "aqbench: skipped:", why)
	}
	var groups []string
	byGroup := map[string][]job{}
	for _, j := range jobs {
		if _, ok := byGroup[j.Group]; !ok {
			groups = append(groups, j.Group)
		}
		byGroup[j.Group] = append(byGroup[j.Group], j)
	}
	est := estimate(jobs, *rounds)
	fmt.Fprintf(os.Stderr, "aqbench: %d jobs, %d rounds of %g s: estimated wall time %.0f s (%.1f min)\n",
		len(jobs), *rounds, *dur, est, est/60)
	if *dryRun {
		for _, j := range jobs {
			fmt.Printf("%-26s %-10s %s\n", j.Key, j.Group, strings.Join(j.Argv, " "))
		}
		return nil
	}

	rep := &report{
		Date:    time.Now().UTC().Format(time.RFC3339),
		Machine: machineInfo(),
		Settings: map[string]any{
			"rounds": *rounds, "dur_s": *dur, "iters": *iters, "churn_dur_s": *churnDur, "batch": *batch,
			"estimated_wall_s": math.Round(est),
			"method": "each job is its own process; within a group, jobs run back to back and their order rotates every round; " +
				"ratios are the median of per-round ratios",
		},
		Samples:  map[string][]sample{},
		Commands: map[string][]string{},
		Medians:  map[string]map[string]float64{},
	}
	if out, err := exec.Command(*binC, "info", "certs="+*certs).Output(); err == nil {
		if f := strings.Fields(string(out)); len(f) == 2 {
			rep.Machine["library_version"] = f[0]
			rep.Machine["library_congestion_control"] = f[1]
		}
	}
	rep.Machine["congestion_control"] = "library: NewReno in every row compared with quic-go, BBRv2 in the rows marked BBRv2 " +
		"and through the Rust and Python bindings (the library's default); quic-go: NewReno; quinn: Cubic"
	start := time.Now()
	for r := 0; r < *rounds; r++ {
		fmt.Fprintf(os.Stderr, "round %d/%d (%.0f s so far)\n", r+1, *rounds, time.Since(start).Seconds())
		for _, g := range groups {
			js := byGroup[g]
			for i := range js {
				j := js[(i+r)%len(js)]
				if j.Once && r > 0 {
					continue
				}
				rep.Commands[j.Key] = j.Argv
				t := time.Now()
				m, err := runJob(j, *timeout)
				if err != nil {
					msg := fmt.Sprintf("round %d %s: %v", r+1, j.Key, err)
					fmt.Fprintln(os.Stderr, "  FAILED", msg)
					rep.Failures = append(rep.Failures, msg)
					continue
				}
				el := time.Since(t).Seconds()
				fmt.Fprintf(os.Stderr, "  %-26s %s\n", j.Key, brief(m))
				rep.Samples[j.Key] = append(rep.Samples[j.Key], sample{Round: r, Metrics: m, Seconds: el})
			}
		}
	}
	rep.WallSeconds = time.Since(start).Seconds()
	rep.Machine["loadavg_end"] = machine.Loadavg()
	for k, ss := range rep.Samples {
		rep.Medians[k] = medians(ss)
	}
	rep.Comparisons = comparisons()
	for _, c := range rep.Comparisons {
		for _, k := range []string{c.Num, c.Den} {
			if why, ok := missing[k]; ok && c.Skipped == "" {
				c.Skipped = why
			}
		}
		evaluate(c, rep.Samples)
	}
	printTable(os.Stdout, rep)
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return fmt.Errorf("results directory: %w", err)
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	fmt.Printf("\nwrote %s", *out)
	docPaths := *docs
	if docPaths == "auto" {
		docPaths = ""
		if filepath.Clean(*out) == filepath.Clean(defaultReport) {
			docPaths = defaultDocs
		}
	}
	if docPaths != "" {
		// Render from the file just written, exactly as `aqbench docs`
		// and its test will, so the documents match the committed JSON.
		if err := updateDocs(*out, *ccIn, strings.Split(docPaths, ","), false); err != nil {
			return fmt.Errorf("docs: %w", err)
		}
		fmt.Printf(", %s", docPaths)
	}
	// The chart last: the documents must follow the JSON even when there
	// is nothing to draw.
	if *chart != "" {
		if err := drawChart(rep, *chart); err != nil {
			return fmt.Errorf("chart: %w", err)
		}
		fmt.Printf(", %s", *chart)
	}
	fmt.Printf(" (%.0f s)\n", rep.WallSeconds)
	if len(rep.Failures) > 0 {
		return fmt.Errorf("%d job(s) failed", len(rep.Failures))
	}
	return nil
}

// allJobs is every measurement of a run, grouped so that each comparison's
// two sides run back to back.
func allJobs(c runConfig) []job {
	d := strconv.FormatFloat(c.dur, 'f', -1, 64)
	gd := "-dur=" + d + "s"
	ct := "certs=" + c.certs
	batch := "batch=" + strconv.Itoa(c.batch)
	timed := c.dur + 0.05 // a measurement plus process start and handshake
	lib := func(key, group string, a ...string) job {
		return job{Key: "lib/" + key, Group: group, Impl: "aranya-quic", Argv: append(append([]string{c.binC}, a...), ct), Est: timed}
	}
	gob := func(key, group, impl string, a ...string) job {
		return job{Key: impl + "/" + key, Group: group, Impl: impl, Argv: append(append([]string{c.self, "go"}, a...), "-certs="+c.certs), Est: timed}
	}
	qn := func(key, group string, a ...string) job {
		return job{Key: "quinn/" + key, Group: group, Impl: "quinn", Argv: append(append([]string{c.binQuinn}, a...), ct), Est: timed}
	}
	// The library through the Rust binding: the quinn program's aq-* modes.
	rs := func(key, group string, a ...string) job {
		j := qn(key, group, a...)
		j.Key, j.Impl = "rust/"+key, "aranya-quic-rust"
		return j
	}
	py := func(key, group string, a ...string) job {
		argv := append(append([]string{c.python, c.pyScript}, a...), ct, "lib="+c.lib)
		// The interpreter and the library's Go runtime start first.
		return job{Key: "python/" + key, Group: group, Impl: "aranya-quic-python", Argv: argv, Est: c.dur + 0.5}
	}
	eng := func(key, group string, a ...string) job {
		return job{Key: "engine/" + key, Group: group, Impl: "engine-go", Argv: append(append([]string{c.self, "engine"}, a...), "-certs="+c.certs), Est: timed}
	}
	ceil := func(key string, a ...string) job {
		return job{Key: "ceiling/" + key, Group: "ceiling", Impl: "ceiling", Argv: append([]string{c.self, "go"}, a...), Est: timed}
	}
	// Ping-pong drivers wait for the last echo and close with a drain.
	pp := func(j job) job { j.Est = c.dur + 0.15; return j }
	// 32 connections take their handshakes first.
	slow := func(j job) job { j.Est = c.dur + 0.25; return j }
	reno, bbr, cb := "cc=reno", "cc=bbr2", "recv=callback"
	return []job{
		// The library's fastest path, through the public header: batch
		// sends and the receive callback. One call per message beside it.
		lib("msg64", "msg64", "msg", "size=64", "dur="+d, reno, batch, cb),
		lib("msg64-call", "msg64", "msg", "size=64", "dur="+d, reno),
		lib("msg64-bbr2", "msg64", "msg", "size=64", "dur="+d, bbr, batch, cb),
		lib("msg64-poll", "msg64", "msg", "size=64", "dur="+d, reno, "wait=poll"),
		lib("msg64-batch", "msg64", "msg", "size=64", "dur="+d, bbr, batch),
		gob("msg64-naive", "msg64", "quic-go", "quic-msg", "-size=64", gd, "-writer=naive"),
		gob("msg64-expert", "msg64", "quic-go", "quic-msg", "-size=64", gd, "-writer=expert"),
		gob("msg64-naive", "msg64", "tls-tcp", "tls-msg", "-size=64", gd, "-writer=naive"),
		gob("msg64-expert", "msg64", "tls-tcp", "tls-msg", "-size=64", gd, "-writer=expert"),
		qn("msg64", "msg64", "msg", "size=64", "dur="+d),
		rs("msg64", "msg64", "aq-msg", "size=64", "dur="+d),
		rs("msg64-async", "msg64", "aq-msg-async", "size=64", "dur="+d),
		rs("msg64-async-batch", "msg64", "aq-msg-async-batch", "size=64", "dur="+d),
		py("msg64", "msg64", "msg", "size=64", "dur="+d, batch),
		eng("msg64", "msg64", "msg", "-size=64", gd, "-cc=reno"),

		lib("msg1k", "msg1k", "msg", "size=1024", "dur="+d, reno, batch, cb),
		lib("msg1k-call", "msg1k", "msg", "size=1024", "dur="+d, reno),
		lib("msg1k-bbr2", "msg1k", "msg", "size=1024", "dur="+d, bbr, batch, cb),
		gob("msg1k-naive", "msg1k", "quic-go", "quic-msg", "-size=1024", gd, "-writer=naive"),
		gob("msg1k-expert", "msg1k", "quic-go", "quic-msg", "-size=1024", gd, "-writer=expert"),
		gob("msg1k-naive", "msg1k", "tls-tcp", "tls-msg", "-size=1024", gd, "-writer=naive"),
		gob("msg1k-expert", "msg1k", "tls-tcp", "tls-msg", "-size=1024", gd, "-writer=expert"),

		lib("msg1m", "msg1m", "msg", "size=1048576", "dur="+d, reno, cb),
		lib("msg1m-call", "msg1m", "msg", "size=1048576", "dur="+d, reno),
		lib("msg1m-bbr2", "msg1m", "msg", "size=1048576", "dur="+d, bbr, cb),
		gob("msg1m-expert", "msg1m", "quic-go", "quic-msg", "-size=1048576", gd, "-writer=expert"),
		gob("msg1m-expert", "msg1m", "tls-tcp", "tls-msg", "-size=1048576", gd, "-writer=expert"),
		qn("msg1m", "msg1m", "msg", "size=1048576", "dur="+d),
		rs("msg1m", "msg1m", "aq-msg", "size=1048576", "dur="+d),

		lib("par8x64k", "par", "par", "channels=8", "size=65536", "dur="+d, reno, cb),
		lib("par8x64k-call", "par", "par", "channels=8", "size=65536", "dur="+d, reno),
		lib("par8x64k-bbr2", "par", "par", "channels=8", "size=65536", "dur="+d, bbr, cb),
		gob("par8x64k-expert", "par", "quic-go", "quic-par", "-streams=8", "-size=65536", gd, "-writer=expert"),

		// The library's lowest-latency receive is its receive callback;
		// the receive_timeout (pull) path is reported beside it.
		pp(lib("pingpong", "pingpong", "pingpong", "size=64", "dur="+d, reno, "recv=callback")),
		pp(lib("pingpong-pull", "pingpong", "pingpong", "size=64", "dur="+d, reno)),
		pp(lib("pingpong-bbr2", "pingpong", "pingpong", "size=64", "dur="+d, bbr, "recv=callback")),
		pp(lib("pingpong-load", "pingpong", "pingpong", "size=64", "dur="+d, reno, "load=1", "recv=callback")),
		pp(lib("pingpong-load-pull", "pingpong", "pingpong", "size=64", "dur="+d, reno, "load=1")),
		pp(lib("pingpong-load-bbr2", "pingpong", "pingpong", "size=64", "dur="+d, bbr, "load=1", "recv=callback")),
		pp(gob("pingpong", "pingpong", "quic-go", "quic-pingpong", "-size=64", gd)),
		pp(gob("pingpong-load", "pingpong", "quic-go", "quic-pingpong", "-size=64", gd, "-load")),
		pp(qn("pingpong", "pingpong", "pingpong", "size=64", "dur="+d)),
		pp(rs("pingpong", "pingpong", "aq-pingpong", "size=64", "dur="+d)),
		pp(eng("pingpong", "pingpong", "pingpong", "-size=64", gd, "-cc=reno")),

		slow(lib("fanout32", "fanout", "fanout", "peers=32", "size=64", "dur="+d, reno, batch, cb)),
		slow(lib("fanout32-call", "fanout", "fanout", "peers=32", "size=64", "dur="+d, reno)),
		slow(gob("fanout32-expert", "fanout", "quic-go", "quic-fanout", "-peers=32", "-size=64", gd, "-writer=expert")),

		ceil("aes", "ceiling-aes", gd),
		ceil("udp", "ceiling-udp", gd),

		{Key: "lib/first", Group: "first", Impl: "aranya-quic", Argv: []string{c.binC, "first", "iters=" + strconv.Itoa(c.iters), reno, ct},
			Est: 0.02 + 0.003*float64(c.iters)},
		{Key: "quic-go/dial", Group: "first", Impl: "quic-go", Argv: []string{c.self, "go", "quic-dial", "-iters=" + strconv.Itoa(c.iters), "-certs=" + c.certs},
			Est: 0.02 + 0.003*float64(c.iters)},

		lib("fanin1", "fanin", "fanin", "peers=1", "size=64", "dur="+d),
		slow(lib("fanin32", "fanin", "fanin", "peers=32", "size=64", "dur="+d)),

		{Key: "lib/churn", Group: "churn", Impl: "aranya-quic", Est: c.churnDur + 0.1,
			Argv: []string{c.binC, "churn", "peers=100", "maxconn=32", "dur=" + strconv.FormatFloat(c.churnDur, 'f', -1, 64), ct}},
		{Key: "lib/memidle", Group: "mem", Impl: "aranya-quic", Argv: []string{c.binC, "memidle", "peers=64", ct}, Once: !c.everyRound, Est: 1.0},
		{Key: "lib/memqueue", Group: "mem", Impl: "aranya-quic", Argv: []string{c.binC, "memqueue", ct}, Once: !c.everyRound, Est: 8.5},
	}
}

// availableJobs drops the jobs whose driver is not there, and says why
// for each dropped key, so the comparisons that need them are marked
// skipped rather than failed.
func availableJobs(c runConfig, jobs []job) ([]job, map[string]string) {
	why := map[string]string{}
	haveQuinn, haveRust := true, false
	if _, err := os.Stat(c.binQuinn); err != nil {
		haveQuinn = false
	} else if out, err := exec.Command(c.binQuinn, "features").Output(); err == nil && strings.TrimSpace(string(out)) == "aq" {
		haveRust = true
	}
	pyWhy := ""
	if _, err := exec.LookPath(c.python); err != nil {
		pyWhy = c.python + " not found: the Python binding's scenario is skipped"
	} else if _, err := os.Stat(c.pyScript); err != nil {
		pyWhy = c.pyScript + " missing: the Python binding's scenario is skipped"
	} else if _, err := os.Stat(c.lib); err != nil {
		pyWhy = c.lib + " missing: the Python binding's scenario is skipped"
	}
	var keep []job
	for _, j := range jobs {
		switch {
		case j.Impl == "quinn" && !haveQuinn, j.Impl == "aranya-quic-rust" && !haveQuinn:
			why[j.Key] = c.binQuinn + " missing: the quinn baseline and the Rust binding's scenarios are skipped"
		case j.Impl == "aranya-quic-rust" && !haveRust:
			why[j.Key] = c.binQuinn + " built without the Rust binding: its scenarios are skipped"
		case j.Impl == "aranya-quic-python" && pyWhy != "":
			why[j.Key] = pyWhy
		default:
			keep = append(keep, j)
		}
	}
	return keep, why
}

func sortedValues(m map[string]string) []string {
	seen := map[string]bool{}
	var v []string
	for _, s := range m {
		if !seen[s] {
			seen[s] = true
			v = append(v, s)
		}
	}
	sort.Strings(v)
	return v
}

// estimate is the expected wall time of a run: every job's expected
// time, once per round (or once in all), plus a little per job for the
// orchestrator itself.
func estimate(jobs []job, rounds int) float64 {
	var s float64
	for _, j := range jobs {
		n := float64(rounds)
		if j.Once {
			n = 1
		}
		s += n * (j.Est + 0.02)
	}
	return s
}

// comparisons is every row of the report. The library's rows compared
// with quic-go run NewReno, as quic-go does; the same scenario with the
// library's default, BBRv2, follows each of them as a report row.
func comparisons() []*comparison {
	x := func(sec, name, num, den, metric, op string, target float64) *comparison {
		return &comparison{Section: sec, Name: name, Num: num, Den: den, Metric: metric, Op: op, Target: target, Unit: "x"}
	}
	v := func(sec, name, key, metric, op string, target float64, unit string) *comparison {
		return &comparison{Section: sec, Name: name, Num: key, Metric: metric, Op: op, Target: target, Unit: unit}
	}
	// frac is a scenario's figure over a ceiling's.
	frac := func(name, num, metric, den, denMetric string) *comparison {
		c := x(secCeiling, name, num, den, metric, "", 0)
		c.DenMetric = denMetric
		return c
	}
	const quinnCC = "library BBRv2, quinn Cubic"
	cs := []*comparison{
		x(secRate, "64 B msg/s vs quic-go, expert writer (library: send_batch, receive callback)", "lib/msg64", "quic-go/msg64-expert", "msgs_per_s", ">=", 1.0),
		x(secRate, "64 B msg/s vs quic-go, expert writer (library: one call per message)", "lib/msg64-call", "quic-go/msg64-expert", "msgs_per_s", "", 0),
		x(secRate, "64 B msg/s vs quic-go, expert writer (library BBRv2)", "lib/msg64-bbr2", "quic-go/msg64-expert", "msgs_per_s", "", 0),
		x(secRate, "64 B msg/s vs quic-go, naive writer", "lib/msg64", "quic-go/msg64-naive", "msgs_per_s", "", 0),
		x(secRate, "64 B msg/s vs TLS/TCP, expert writer", "lib/msg64", "tls-tcp/msg64-expert", "msgs_per_s", "", 0),
		x(secRate, "64 B msg/s vs TLS/TCP, naive writer", "lib/msg64", "tls-tcp/msg64-naive", "msgs_per_s", "", 0),
		x(secRate, "64 B CPU per message vs quic-go, expert writer (library: send_batch, receive callback)", "lib/msg64", "quic-go/msg64-expert", "cpu_ns_per_msg", "<=", 1.0),
		x(secRate, "64 B CPU per message vs quic-go, expert writer (library: one call per message)", "lib/msg64-call", "quic-go/msg64-expert", "cpu_ns_per_msg", "", 0),
		x(secRate, "64 B CPU per message vs quic-go, expert writer (library BBRv2)", "lib/msg64-bbr2", "quic-go/msg64-expert", "cpu_ns_per_msg", "", 0),
		x(secRate, "1 KiB msg/s vs quic-go, expert writer (library: send_batch, receive callback)", "lib/msg1k", "quic-go/msg1k-expert", "msgs_per_s", ">=", 1.0),
		x(secRate, "1 KiB msg/s vs quic-go, expert writer (library: one call per message)", "lib/msg1k-call", "quic-go/msg1k-expert", "msgs_per_s", "", 0),
		x(secRate, "1 KiB msg/s vs quic-go, expert writer (library BBRv2)", "lib/msg1k-bbr2", "quic-go/msg1k-expert", "msgs_per_s", "", 0),
		x(secRate, "1 KiB msg/s vs quic-go, naive writer", "lib/msg1k", "quic-go/msg1k-naive", "msgs_per_s", "", 0),
		x(secRate, "1 KiB msg/s vs TLS/TCP, expert writer", "lib/msg1k", "tls-tcp/msg1k-expert", "msgs_per_s", "", 0),
		x(secRate, "1 KiB msg/s vs TLS/TCP, naive writer", "lib/msg1k", "tls-tcp/msg1k-naive", "msgs_per_s", "", 0),
		x(secRate, "1 KiB CPU per message vs quic-go, expert writer", "lib/msg1k", "quic-go/msg1k-expert", "cpu_ns_per_msg", "", 0),
		x(secRate, "1 MiB Gbit/s vs quic-go 1 MiB, expert writer (library: receive callback)", "lib/msg1m", "quic-go/msg1m-expert", "gbit_s", ">=", 0.9),
		x(secRate, "1 MiB Gbit/s vs quic-go 1 MiB, expert writer (library: receive_timeout)", "lib/msg1m-call", "quic-go/msg1m-expert", "gbit_s", "", 0),
		x(secRate, "1 MiB Gbit/s vs quic-go 1 MiB, expert writer (library BBRv2)", "lib/msg1m-bbr2", "quic-go/msg1m-expert", "gbit_s", "", 0),
		x(secRate, "1 MiB Gbit/s vs TLS/TCP 1 MiB, expert writer", "lib/msg1m", "tls-tcp/msg1m-expert", "gbit_s", "", 0),
		x(secRate, "8 channels x 64 KiB Gbit/s vs quic-go 8 streams, 8 expert writers (library: receive callback)", "lib/par8x64k", "quic-go/par8x64k-expert", "gbit_s", ">=", 1.0),
		x(secRate, "8 channels x 64 KiB Gbit/s vs quic-go 8 streams, 8 expert writers (library: receive_timeout)", "lib/par8x64k-call", "quic-go/par8x64k-expert", "gbit_s", "", 0),
		x(secRate, "8 channels x 64 KiB Gbit/s vs quic-go 8 streams (library BBRv2)", "lib/par8x64k-bbr2", "quic-go/par8x64k-expert", "gbit_s", "", 0),
		x(secRate, "fan-out to 32 peers, 64 B msg/s vs quic-go, expert writers (library: send_batch, receive callback)", "lib/fanout32", "quic-go/fanout32-expert", "msgs_per_s", "", 0),
		x(secRate, "fan-out to 32 peers, 64 B msg/s vs quic-go, expert writers (library: one call per message)", "lib/fanout32-call", "quic-go/fanout32-expert", "msgs_per_s", "", 0),
		x(secRate, "fan-out to 32 peers, CPU per message vs quic-go, expert writers (library: send_batch, receive callback)", "lib/fanout32", "quic-go/fanout32-expert", "cpu_ns_per_msg", "", 0),

		x(secLatency, "ping-pong 64 B: RTT p50 vs quic-go (receive callback)", "lib/pingpong", "quic-go/pingpong", "p50_us", "<=", 1.3),
		x(secLatency, "ping-pong 64 B: RTT p50 vs quic-go (receive_timeout)", "lib/pingpong-pull", "quic-go/pingpong", "p50_us", "", 0),
		x(secLatency, "ping-pong 64 B: RTT p99 vs quic-go (receive_timeout)", "lib/pingpong-pull", "quic-go/pingpong", "p99_us", "", 0),
		x(secLatency, "ping-pong 64 B: RTT p50 vs quic-go (library BBRv2)", "lib/pingpong-bbr2", "quic-go/pingpong", "p50_us", "", 0),
		x(secLatency, "ping-pong 64 B: RTT p99 vs quic-go (receive callback)", "lib/pingpong", "quic-go/pingpong", "p99_us", "<=", 2.0),
		x(secLatency, "ping-pong 64 B: RTT p99 vs quic-go (library BBRv2)", "lib/pingpong-bbr2", "quic-go/pingpong", "p99_us", "", 0),
		x(secLatency, "under load: RTT p99 / idle RTT p99, library (receive callback)", "lib/pingpong-load", "lib/pingpong", "p99_us", "<=", 5.0),
		x(secLatency, "under load: RTT p99 / idle RTT p99, library (receive_timeout)", "lib/pingpong-load-pull", "lib/pingpong-pull", "p99_us", "", 0),
		x(secLatency, "under load: RTT p99 / idle RTT p99, library (BBRv2)", "lib/pingpong-load-bbr2", "lib/pingpong-bbr2", "p99_us", "", 0),
		x(secLatency, "under load: RTT p99 / idle RTT p99, quic-go", "quic-go/pingpong-load", "quic-go/pingpong", "p99_us", "", 0),
		x(secLatency, "under load: RTT p99 vs quic-go under load", "lib/pingpong-load", "quic-go/pingpong-load", "p99_us", "", 0),
		v(secLatency, "under load: the library's bulk flow meanwhile, Gbit/s", "lib/pingpong-load", "bulk_gbit_s", "", 0, "Gbit/s"),
		x(secLatency, "first message to a new peer: p50 vs quic-go dial+data", "lib/first", "quic-go/dial", "p50_us", "<=", 1.3),
		x(secLatency, "ping-pong 64 B: RTT p50 vs quinn (both from Rust; "+quinnCC+")", "rust/pingpong", "quinn/pingpong", "p50_us", "", 0),

		x(secBind, "Rust: 64 B msg/s vs quinn (both from Rust; "+quinnCC+")", "rust/msg64", "quinn/msg64", "msgs_per_s", "", 0),
		v(secBind, "Rust, async receive (tokio): 64 B msg/s", "rust/msg64-async", "msgs_per_s", "", 0, "msg/s"),
		x(secBind, "Rust, async receive: 64 B msg/s vs quinn (both async; "+quinnCC+")", "rust/msg64-async", "quinn/msg64", "msgs_per_s", "", 0),
		v(secBind, "Rust, async batch receive (tokio, recv_batch): 64 B msg/s", "rust/msg64-async-batch", "msgs_per_s", "", 0, "msg/s"),
		x(secBind, "Rust, async batch receive: 64 B msg/s vs quinn (both async; "+quinnCC+")", "rust/msg64-async-batch", "quinn/msg64", "msgs_per_s", "", 0),
		x(secBind, "Rust: 1 MiB Gbit/s vs quinn (both from Rust; "+quinnCC+")", "rust/msg1m", "quinn/msg1m", "gbit_s", "", 0),
		x(secBind, "C: 64 B msg/s vs quinn (library NewReno, quinn Cubic)", "lib/msg64", "quinn/msg64", "msgs_per_s", "", 0),
		v(secBind, "Python, batch send and receive: 64 B msg/s", "python/msg64", "msgs_per_s", "", 0, "msg/s"),
		x(secBind, "Python, batch send and receive: 64 B msg/s vs C, the same calls", "python/msg64", "lib/msg64-batch", "msgs_per_s", "", 0),
		x(secBind, "C, send_batch and receive callback vs one call per message: 64 B msg/s", "lib/msg64", "lib/msg64-call", "msgs_per_s", "", 0),
		x(secBind, "C, receive by polling the fd vs receive_timeout: 64 B msg/s", "lib/msg64-poll", "lib/msg64-call", "msgs_per_s", "", 0),

		v(secCeiling, "AES-128-GCM seal on one core: Gbit/s", "ceiling/aes", "gbit_s", "", 0, "Gbit/s"),
		v(secCeiling, "AES-128-GCM seal on one core: packets/s", "ceiling/aes", "packets_per_s", "", 0, "1/s"),
		v(secCeiling, "UDP over loopback: datagrams/s received", "ceiling/udp", "datagrams_per_s", "", 0, "1/s"),
		v(secCeiling, "UDP over loopback: datagrams/s sent", "ceiling/udp", "sent_per_s", "", 0, "1/s"),
		v(secCeiling, "UDP over loopback: Gbit/s received", "ceiling/udp", "gbit_s", "", 0, "Gbit/s"),
		v(secCeiling, "UDP over loopback: fraction of datagrams lost", "ceiling/udp", "loss_fraction", "", 0, ""),
		frac("64 B, library: msg/s / UDP datagrams/s", "lib/msg64", "msgs_per_s", "ceiling/udp", "datagrams_per_s"),
		frac("64 B, quic-go expert: msg/s / UDP datagrams/s", "quic-go/msg64-expert", "msgs_per_s", "ceiling/udp", "datagrams_per_s"),
		frac("1 KiB, library: msg/s / UDP datagrams/s", "lib/msg1k", "msgs_per_s", "ceiling/udp", "datagrams_per_s"),
		frac("1 KiB, quic-go expert: msg/s / UDP datagrams/s", "quic-go/msg1k-expert", "msgs_per_s", "ceiling/udp", "datagrams_per_s"),
		frac("1 KiB, library: Gbit/s / AES-GCM Gbit/s", "lib/msg1k", "gbit_s", "ceiling/aes", "gbit_s"),
		frac("1 KiB, quic-go expert: Gbit/s / AES-GCM Gbit/s", "quic-go/msg1k-expert", "gbit_s", "ceiling/aes", "gbit_s"),
		frac("1 MiB, library: Gbit/s / AES-GCM Gbit/s", "lib/msg1m", "gbit_s", "ceiling/aes", "gbit_s"),
		frac("1 MiB, quic-go expert: Gbit/s / AES-GCM Gbit/s", "quic-go/msg1m-expert", "gbit_s", "ceiling/aes", "gbit_s"),
		frac("8 x 64 KiB, library: Gbit/s / AES-GCM Gbit/s", "lib/par8x64k", "gbit_s", "ceiling/aes", "gbit_s"),
		frac("8 x 64 KiB, quic-go expert: Gbit/s / AES-GCM Gbit/s", "quic-go/par8x64k-expert", "gbit_s", "ceiling/aes", "gbit_s"),

		x(secScale, "32 peers into one endpoint: msg/s vs 1 peer", "lib/fanin32", "lib/fanin1", "msgs_per_s", ">=", 0.7),
		v(secScale, "eviction churn (100 peers, 32 conns): messages lost", "lib/churn", "lost", "<=", 0, "msgs"),
		v(secScale, "eviction churn: messages/s", "lib/churn", "msgs_per_s", "", 0, "msg/s"),
		v(secScale, "eviction churn: handshakes/s", "lib/churn", "handshakes_per_s", "", 0, "1/s"),
		v(secScale, "memory: RSS per idle connection (both ends)", "lib/memidle", "kib_per_conn", "", 0, "KiB"),
		v(secScale, "memory: peak RSS, full queue / (queue limit + 64 MiB)", "lib/memqueue", "peak_over_limit_plus_64", "<=", 1.0, "x"),

		x(secDiag, "engine from Go: 64 B msg/s vs quic-go, expert writer", "engine/msg64", "quic-go/msg64-expert", "msgs_per_s", "", 0),
		x(secDiag, "C API cost: library from C vs engine from Go, 64 B msg/s (one call per message)", "lib/msg64-call", "engine/msg64", "msgs_per_s", "", 0),
		x(secDiag, "engine from Go: ping-pong p50 vs quic-go", "engine/pingpong", "quic-go/pingpong", "p50_us", "", 0),
		x(secDiag, "C API cost: library from C vs engine from Go, ping-pong p50 (receive callback)", "lib/pingpong", "engine/pingpong", "p50_us", "", 0),
		x(secDiag, "C API cost: library from C vs engine from Go, ping-pong p50 (receive_timeout)", "lib/pingpong-pull", "engine/pingpong", "p50_us", "", 0),
	}
	for _, c := range cs {
		c.Better = "higher"
		if lowerIsBetter(c.Metric) {
			c.Better = "lower"
		}
	}
	return cs
}

// evaluate fills a row from the samples: the median of the per-round
// ratios (both sides of a round ran close together), whether the target
// is met and by how much.
func evaluate(c *comparison, samples map[string][]sample) {
	if c.Skipped != "" {
		return
	}
	num := samples[c.Num]
	if len(num) == 0 {
		c.Skipped = "no samples of " + c.Num
		return
	}
	nv := values(num, c.Metric)
	if len(nv) == 0 {
		c.Skipped = c.Num + " reports no " + c.Metric
		return
	}
	c.NumMedian = median(nv)
	if c.Den == "" {
		c.Result = c.NumMedian
	} else {
		dm := c.DenMetric
		if dm == "" {
			dm = c.Metric
		}
		den := samples[c.Den]
		if len(den) == 0 {
			c.Skipped = "no samples of " + c.Den
			return
		}
		dv := values(den, dm)
		if len(dv) == 0 {
			c.Skipped = c.Den + " reports no " + dm
			return
		}
		c.DenMedian = median(dv)
		if c.DenMedian != 0 {
			c.RatioOfMedian = c.NumMedian / c.DenMedian
		}
		dr := map[int]float64{}
		for _, s := range den {
			if d, ok := s.Metrics[dm]; ok {
				dr[s.Round] = d
			}
		}
		for _, s := range num {
			n, ok := s.Metrics[c.Metric]
			if d := dr[s.Round]; ok && d != 0 {
				c.RoundRatios = append(c.RoundRatios, n/d)
			}
		}
		if len(c.RoundRatios) == 0 {
			// The two sides never ran in the same round (a job that runs
			// once against one that failed then): the medians' ratio.
			if c.DenMedian == 0 {
				c.Skipped = c.Den + " is 0"
				return
			}
			c.Result = c.RatioOfMedian
		} else {
			c.Result = median(c.RoundRatios)
		}
	}
	judge(c)
}

// judge sets Met and Score from Result, Op and Target.
func judge(c *comparison) {
	c.Met, c.Score = nil, 0
	var met bool
	switch c.Op {
	case ">=":
		met = c.Result >= c.Target
		if c.Target > 0 {
			c.Score = c.Result / c.Target
		}
	case "<=":
		met = c.Result <= c.Target
		if c.Target > 0 && c.Result > 0 {
			c.Score = c.Target / c.Result
		}
	default:
		return
	}
	c.Met = &met
}

// normalize brings a report read from disk to the current form: reports
// written before rows carried a direction and a "result" get both
// derived from their op, metric and "ratio".
func normalize(rep *report) {
	for _, c := range rep.Comparisons {
		if c.Result == 0 && c.LegacyRatio != 0 {
			c.Result = c.LegacyRatio
		}
		c.LegacyRatio = 0
		if c.Better == "" {
			switch {
			case c.Op == ">=":
				c.Better = "higher"
			case c.Op == "<=" || lowerIsBetter(c.Metric):
				c.Better = "lower"
			default:
				c.Better = "higher"
			}
		}
		if c.Skipped == "" {
			judge(c)
		}
	}
}

func values(ss []sample, metric string) []float64 {
	var v []float64
	for _, s := range ss {
		if x, ok := s.Metrics[metric]; ok && !math.IsNaN(x) && !math.IsInf(x, 0) {
			v = append(v, x)
		}
	}
	return v
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func medians(ss []sample) map[string]float64 {
	keys := map[string]bool{}
	for _, s := range ss {
		for k := range s.Metrics {
			keys[k] = true
		}
	}
	m := map[string]float64{}
	for k := range keys {
		if v := values(ss, k); len(v) > 0 {
			m[k] = median(v)
		}
	}
	return m
}

func runJob(j job, timeout time.Duration) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, j.Argv[0], j.Argv[1:]...)
	if len(j.Env) > 0 {
		cmd.Env = append(os.Environ(), j.Env...)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%w: %s", err, lastLines(stderr.String(), 3))
	}
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		var r result
		if json.Unmarshal(sc.Bytes(), &r) == nil && r.Metrics != nil {
			for k, v := range r.Metrics {
				// JSON cannot carry them, and a median must not see them.
				if math.IsNaN(v) || math.IsInf(v, 0) {
					delete(r.Metrics, k)
				}
			}
			return r.Metrics, nil
		}
	}
	return nil, errors.New("no result line: " + lastLines(stdout.String(), 3))
}

// lastLines keeps a failing driver's message short in the report.
func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, " / ")
}

func brief(m map[string]float64) string {
	var parts []string
	for _, k := range []string{"msgs_per_s", "gbit_s", "cpu_ns_per_msg", "p50_us", "p99_us", "bulk_gbit_s", "datagrams_per_s", "packets_per_s",
		"loss_fraction", "handshakes_per_s", "lost", "kib_per_conn", "peak_rss_mib"} {
		if v, ok := m[k]; ok {
			parts = append(parts, fmt.Sprintf("%s=%.4g", k, v))
		}
	}
	return strings.Join(parts, " ")
}

func printTable(w io.Writer, rep *report) {
	fmt.Fprintf(w, "\n| comparison | better | result | target | met |\n|---|---|---|---|---|\n")
	for _, c := range rep.Comparisons {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", c.Name, c.Better, resultCell(c), targetCell(c), metCell(c))
	}
	m := rep.Machine
	fmt.Fprintf(w, "\n%s rounds of %v s, %s; %s, %s CPUs, Linux %s, %s, load %s -> %s\n",
		fmt.Sprint(rep.Settings["rounds"]), rep.Settings["dur_s"], rep.Date, m["cpu_model"], m["nproc"], m["kernel"], m["go"], m["loadavg_start"], m["loadavg_end"])
}

func machineInfo() map[string]string {
	m := machine.Info()
	if b, err := os.ReadFile("bench/quinn/Cargo.lock"); err == nil {
		s := string(b)
		if i := strings.Index(s, "name = \"quinn\"\nversion = \""); i >= 0 {
			rest := s[i+len("name = \"quinn\"\nversion = \""):]
			m["quinn"] = rest[:strings.IndexByte(rest, '"')]
		}
	}
	if out, err := exec.Command("rustc", "--version").Output(); err == nil {
		m["rustc"] = strings.TrimSpace(string(out))
	}
	if out, err := exec.Command("cc", "--version").Output(); err == nil {
		m["cc"] = strings.SplitN(strings.TrimSpace(string(out)), "\n", 2)[0]
	}
	if out, err := exec.Command("python3", "--version").Output(); err == nil {
		m["python"] = strings.TrimSpace(string(out))
	}
	return m
}
