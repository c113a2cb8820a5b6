package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"github.com/aranya-quic/aranya-quic/bench/internal/machine"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// A job is one measurement: one process run of one driver.
type job struct {
	Key   string   // "lib/msg64", "quic-go/msg64", ...
	Group string   // jobs of a group run back to back, in rotating order
	Impl  string   // aranya-quic, quic-go, tls-tcp, quinn
	Argv  []string // the command
	Once  bool     // run in the first round only (unless -every-round)
}

// A comparison is one row of the table.
type comparison struct {
	Name   string  `json:"name"`
	Num    string  `json:"num"` // job key of the library side
	Den    string  `json:"den"` // job key of the baseline ("" for a value)
	Metric string  `json:"metric"`
	Op     string  `json:"op"`     // ">=", "<=", or "" (report only)
	Target float64 `json:"target"` // for Op
	Unit   string  `json:"unit"`   // "x" for ratios

	// Filled from the run.
	Ratio         float64   `json:"ratio"`            // median of per-round ratios (or the value)
	RatioOfMedian float64   `json:"ratio_of_medians"` // median(num) / median(den)
	RoundRatios   []float64 `json:"round_ratios,omitempty"`
	NumMedian     float64   `json:"num_median"`
	DenMedian     float64   `json:"den_median,omitempty"`
	Met           *bool     `json:"met,omitempty"`
	Margin        float64   `json:"margin,omitempty"` // >1: met by this factor
	Skipped       string    `json:"skipped,omitempty"`
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

func runMain(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	rounds := fs.Int("rounds", 5, "rounds; each runs every job once, library and baselines alternating")
	dur := fs.Float64("dur", 1.0, "seconds per throughput or latency measurement")
	iters := fs.Int("iters", 20, "new connections per first-message measurement")
	churnDur := fs.Float64("churn-dur", 1.5, "seconds of eviction churn")
	everyRound := fs.Bool("every-round", false, "run the memory scenarios every round (else once)")
	binC := fs.String("c", "build/bench/aqbench-c", "the C driver of the library")
	binQuinn := fs.String("quinn", "build/bench/cargo/release/quinnbench", "the quinn baseline (skipped if missing)")
	certs := fs.String("certs", "build/bench/certs", "examples/certgen output")
	out := fs.String("out", "bench/results/latest.json", "JSON report")
	chart := fs.String("chart", "bench/results/ratios.png", "chart of the ratios")
	timeout := fs.Duration("job-timeout", 2*time.Minute, "per-job time limit")
	fs.Parse(args)

	self, err := os.Executable()
	if err != nil {
		return err
	}
	haveQuinn, haveRust := true, false
	if _, err := os.Stat(*binQuinn); err != nil {
		haveQuinn = false
		fmt.Fprintf(os.Stderr, "aqbench: %s missing: quinn baselines skipped\n", *binQuinn)
	} else if out, err := exec.Command(*binQuinn, "features").Output(); err == nil && strings.TrimSpace(string(out)) == "aq" {
		haveRust = true
	} else {
		fmt.Fprintf(os.Stderr, "aqbench: %s built without the Rust binding: its scenarios are skipped\n", *binQuinn)
	}
	d := strconv.FormatFloat(*dur, 'f', -1, 64)
	ct := "certs=" + *certs
	lib := func(key, group string, a ...string) job {
		return job{Key: "lib/" + key, Group: group, Impl: "aranya-quic", Argv: append(append([]string{*binC}, a...), ct)}
	}
	gob := func(key, group, impl string, a ...string) job {
		return job{Key: impl + "/" + key, Group: group, Impl: impl, Argv: append(append([]string{self, "go"}, a...), "-certs="+*certs)}
	}
	qn := func(key, group string, a ...string) job {
		return job{Key: "quinn/" + key, Group: group, Impl: "quinn", Argv: append(append([]string{*binQuinn}, a...), ct)}
	}
	// The library through the Rust binding: the quinn program's aq-* modes.
	rs := func(key, group string, a ...string) job {
		j := qn(key, group, a...)
		j.Key, j.Impl = "rust/"+key, "quinn"
		return j
	}
	eng := func(key, group string, a ...string) job {
		return job{Key: "engine/" + key, Group: group, Impl: "engine-go", Argv: append(append([]string{self, "engine"}, a...), "-certs="+*certs)}
	}
	jobs := []job{
		lib("msg64", "msg64", "msg", "size=64", "dur="+d),
		gob("msg64", "msg64", "quic-go", "quic-msg", "-size=64", "-dur="+d+"s"),
		gob("msg64", "msg64", "tls-tcp", "tls-msg", "-size=64", "-dur="+d+"s"),
		qn("msg64", "msg64", "msg", "size=64", "dur="+d),
		rs("msg64", "msg64", "aq-msg", "size=64", "dur="+d),
		eng("msg64", "msg64", "msg", "-size=64", "-dur="+d+"s"),

		lib("msg1k", "msg1k", "msg", "size=1024", "dur="+d),
		gob("msg1k", "msg1k", "quic-go", "quic-msg", "-size=1024", "-dur="+d+"s"),
		gob("msg1k", "msg1k", "tls-tcp", "tls-msg", "-size=1024", "-dur="+d+"s"),

		lib("msg1m", "bulk", "msg", "size=1048576", "dur="+d),
		lib("par8x64k", "bulk", "par", "channels=8", "size=65536", "dur="+d),
		gob("bulk64k", "bulk", "quic-go", "quic-msg", "-size=65536", "-dur="+d+"s"),
		gob("bulk64k", "bulk", "tls-tcp", "tls-msg", "-size=65536", "-dur="+d+"s"),
		qn("msg1m", "bulk", "msg", "size=1048576", "dur="+d),
		rs("msg1m", "bulk", "aq-msg", "size=1048576", "dur="+d),

		lib("pingpong", "pingpong", "pingpong", "size=64", "dur="+d),
		gob("pingpong", "pingpong", "quic-go", "quic-pingpong", "-size=64", "-dur="+d+"s"),
		qn("pingpong", "pingpong", "pingpong", "size=64", "dur="+d),
		rs("pingpong", "pingpong", "aq-pingpong", "size=64", "dur="+d),
		eng("pingpong", "pingpong", "pingpong", "-size=64", "-dur="+d+"s"),

		lib("first", "first", "first", "iters="+strconv.Itoa(*iters)),
		gob("dial", "first", "quic-go", "quic-dial", "-iters="+strconv.Itoa(*iters)),

		lib("fanin1", "fanin", "fanin", "peers=1", "size=64", "dur="+d),
		lib("fanin32", "fanin", "fanin", "peers=32", "size=64", "dur="+d),

		lib("churn", "churn", "churn", "peers=100", "maxconn=32", "dur="+strconv.FormatFloat(*churnDur, 'f', -1, 64)),
		{Key: "lib/memidle", Group: "mem", Impl: "aranya-quic", Argv: []string{*binC, "memidle", "peers=64", ct}, Once: !*everyRound},
		{Key: "lib/memqueue", Group: "mem", Impl: "aranya-quic", Argv: []string{*binC, "memqueue", ct}, Once: !*everyRound},
	}
	var keep []job
	for _, j := range jobs {
		if (j.Impl == "quinn" && !haveQuinn) || (strings.HasPrefix(j.Key, "rust/") && !haveRust) {
			continue
		}
		keep = append(keep, j)
	}
	jobs = keep
	var groups []string
	byGroup := map[string][]job{}
	for _, j := range jobs {
		if _, ok := byGroup[j.Group]; !ok {
			groups = append(groups, j.Group)
		}
		byGroup[j.Group] = append(byGroup[j.Group], j)
	}

	rep := &report{
		Date:    time.Now().UTC().Format(time.RFC3339),
		Machine: machineInfo(),
		Settings: map[string]any{
			"rounds": *rounds, "dur_s": *dur, "iters": *iters, "churn_dur_s": *churnDur,
			"method": "each job is its own process; within a group, jobs run back to back and their order rotates every round; ratios are the median of per-round ratios",
		},
		Samples:  map[string][]sample{},
		Commands: map[string][]string{},
		Medians:  map[string]map[string]float64{},
	}
	if out, err := exec.Command(*binC, "info", ct).Output(); err == nil {
		if f := strings.Fields(string(out)); len(f) == 2 {
			rep.Machine["library_version"] = f[0]
			rep.Machine["library_congestion_control"] = f[1]
		}
	}
	// The Go and quinn baselines use NewReno (quic-go from the module
	// proxy, unpatched) and quinn's default (Cubic).
	rep.Machine["baseline_congestion_control"] = "quic-go: reno, quinn: cubic"
	start := time.Now()
	for r := 0; r < *rounds; r++ {
		fmt.Fprintf(os.Stderr, "round %d/%d\n", r+1, *rounds)
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
				fmt.Fprintf(os.Stderr, "  %-22s %s\n", j.Key, brief(m))
				rep.Samples[j.Key] = append(rep.Samples[j.Key], sample{Round: r, Metrics: m, Seconds: el})
			}
		}
	}
	rep.WallSeconds = time.Since(start).Seconds()
	rep.Machine["loadavg_end"] = machine.Loadavg()
	for k, ss := range rep.Samples {
		rep.Medians[k] = medians(ss)
	}
	rep.Comparisons = comparisons(haveQuinn, haveRust)
	for _, c := range rep.Comparisons {
		evaluate(c, rep.Samples)
	}
	printTable(os.Stdout, rep)
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Printf("\nwrote %s", *out)
	if *chart != "" {
		if err := drawChart(rep, *chart); err != nil {
			return fmt.Errorf("chart: %w", err)
		}
		fmt.Printf(" and %s", *chart)
	}
	fmt.Printf(" (%.0f s)\n", rep.WallSeconds)
	if len(rep.Failures) > 0 {
		return fmt.Errorf("%d job(s) failed", len(rep.Failures))
	}
	return nil
}

func comparisons(haveQuinn, haveRust bool) []*comparison {
	x := func(name, num, den, metric, op string, target float64) *comparison {
		return &comparison{Name: name, Num: num, Den: den, Metric: metric, Op: op, Target: target, Unit: "x"}
	}
	v := func(name, key, metric, op string, target float64, unit string) *comparison {
		return &comparison{Name: name, Num: key, Metric: metric, Op: op, Target: target, Unit: unit}
	}
	cs := []*comparison{
		x("64 B, 1 channel: msg/s vs raw quic-go", "lib/msg64", "quic-go/msg64", "msgs_per_s", ">=", 1.0),
		x("64 B, 1 channel: msg/s vs TLS/TCP", "lib/msg64", "tls-tcp/msg64", "msgs_per_s", ">=", 3.0),
		x("64 B, 1 channel: msg/s vs quinn (both from Rust)", "rust/msg64", "quinn/msg64", "msgs_per_s", ">=", 1.0),
		x("64 B, 1 channel: msg/s vs quinn (library from C)", "lib/msg64", "quinn/msg64", "msgs_per_s", "", 0),
		x("1 KiB, 1 channel: msg/s vs raw quic-go", "lib/msg1k", "quic-go/msg1k", "msgs_per_s", ">=", 3.0),
		x("1 KiB, 1 channel: msg/s vs TLS/TCP", "lib/msg1k", "tls-tcp/msg1k", "msgs_per_s", "", 0),
		x("1 MiB, 1 channel: Gbit/s vs raw quic-go bulk", "lib/msg1m", "quic-go/bulk64k", "gbit_s", ">=", 0.9),
		x("1 MiB, 1 channel: Gbit/s vs quinn 1 MiB (both from Rust)", "rust/msg1m", "quinn/msg1m", "gbit_s", "", 0),
		x("1 MiB, 1 channel: Gbit/s vs TLS/TCP bulk", "lib/msg1m", "tls-tcp/bulk64k", "gbit_s", "", 0),
		x("8 channels x 64 KiB: Gbit/s vs raw quic-go bulk", "lib/par8x64k", "quic-go/bulk64k", "gbit_s", ">=", 1.0),
		x("ping-pong 64 B: RTT p50 vs raw quic-go", "lib/pingpong", "quic-go/pingpong", "p50_us", "<=", 1.3),
		x("ping-pong 64 B: RTT p99 vs raw quic-go", "lib/pingpong", "quic-go/pingpong", "p99_us", "", 0),
		x("ping-pong 64 B: RTT p50 vs quinn (both from Rust)", "rust/pingpong", "quinn/pingpong", "p50_us", "", 0),
		x("diagnostic: engine from Go (no C API), 64 B msg/s vs raw quic-go", "engine/msg64", "quic-go/msg64", "msgs_per_s", "", 0),
		x("diagnostic: engine from Go (no C API), ping-pong p50 vs raw quic-go", "engine/pingpong", "quic-go/pingpong", "p50_us", "", 0),
		x("first message to a new peer: p50 vs quic-go dial+data", "lib/first", "quic-go/dial", "p50_us", "<=", 1.3),
		x("32 peers into one endpoint: msg/s vs 1 peer", "lib/fanin32", "lib/fanin1", "msgs_per_s", ">=", 0.7),
		v("eviction churn (100 peers, 32 conns): messages lost", "lib/churn", "lost", "<=", 0, "msgs"),
		v("eviction churn: messages/s", "lib/churn", "msgs_per_s", "", 0, "msg/s"),
		v("eviction churn: handshakes/s", "lib/churn", "handshakes_per_s", "", 0, "1/s"),
		v("memory: RSS per idle connection (both ends)", "lib/memidle", "kib_per_conn", "", 0, "KiB"),
		v("memory: peak RSS, full queue / (queue limit + 64 MiB)", "lib/memqueue", "peak_over_limit_plus_64", "<=", 1.0, "x"),
	}
	for _, c := range cs {
		switch {
		case !haveQuinn && strings.HasPrefix(c.Den, "quinn/"):
			c.Skipped = "quinn baseline not built"
		case !haveRust && strings.HasPrefix(c.Num, "rust/"):
			c.Skipped = "Rust binding not built"
		}
	}
	return cs
}

func evaluate(c *comparison, samples map[string][]sample) {
	if c.Skipped != "" {
		return
	}
	num := samples[c.Num]
	if len(num) == 0 {
		c.Skipped = "no samples of " + c.Num
		return
	}
	c.NumMedian = median(values(num, c.Metric))
	if c.Den == "" {
		c.Ratio = c.NumMedian
	} else {
		den := samples[c.Den]
		if len(den) == 0 {
			c.Skipped = "no samples of " + c.Den
			return
		}
		c.DenMedian = median(values(den, c.Metric))
		c.RatioOfMedian = c.NumMedian / c.DenMedian
		// Pair the rounds: both sides of a round ran back to back.
		dr := map[int]float64{}
		for _, s := range den {
			dr[s.Round] = s.Metrics[c.Metric]
		}
		for _, s := range num {
			if d, ok := dr[s.Round]; ok && d != 0 {
				c.RoundRatios = append(c.RoundRatios, s.Metrics[c.Metric]/d)
			}
		}
		c.Ratio = median(c.RoundRatios)
	}
	switch c.Op {
	case ">=":
		met := c.Ratio >= c.Target
		c.Met = &met
		if c.Target > 0 {
			c.Margin = c.Ratio / c.Target
		}
	case "<=":
		met := c.Ratio <= c.Target
		c.Met = &met
		if c.Ratio > 0 {
			c.Margin = c.Target / c.Ratio
		} else if met {
			c.Margin = 1
		}
	}
}

func values(ss []sample, metric string) []float64 {
	var v []float64
	for _, s := range ss {
		if x, ok := s.Metrics[metric]; ok {
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
		m[k] = median(values(ss, k))
	}
	return m
}

func runJob(j job, timeout time.Duration) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, j.Argv[0], j.Argv[1:]...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		var r result
		if json.Unmarshal(sc.Bytes(), &r) == nil && r.Metrics != nil {
			return r.Metrics, nil
		}
	}
	return nil, errors.New("no result line: " + strings.TrimSpace(stdout.String()))
}

func brief(m map[string]float64) string {
	var parts []string
	for _, k := range []string{"msgs_per_s", "gbit_s", "p50_us", "p99_us", "handshakes_per_s", "lost", "kib_per_conn", "peak_rss_mib"} {
		if v, ok := m[k]; ok {
			parts = append(parts, fmt.Sprintf("%s=%.4g", k, v))
		}
	}
	return strings.Join(parts, " ")
}

func printTable(w *os.File, rep *report) {
	fmt.Fprintf(w, "\n| comparison | ratio (library / baseline) | target | met |\n|---|---|---|---|\n")
	for _, c := range rep.Comparisons {
		val, target, met := "", "report", ""
		switch {
		case c.Skipped != "":
			val, met = "-", "skipped: "+c.Skipped
		case c.Unit == "x":
			val = fmt.Sprintf("%.2fx", c.Ratio)
		default:
			val = fmt.Sprintf("%.4g %s", c.Ratio, c.Unit)
		}
		if c.Op != "" {
			if c.Unit == "x" {
				target = fmt.Sprintf("%s %.1fx", c.Op, c.Target)
			} else {
				target = fmt.Sprintf("%s %g", c.Op, c.Target)
			}
		}
		if c.Met != nil {
			if *c.Met {
				met = "met"
			} else {
				met = "MISSED"
			}
			if c.Margin > 0 && c.Unit == "x" {
				met += fmt.Sprintf(" (%.2fx of target)", c.Margin)
			}
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", c.Name, val, target, met)
	}
	m := rep.Machine
	fmt.Fprintf(w, "\n%s rounds of %v s, %s; %s, %s CPUs, Linux %s, %s, load %s -> %s; library congestion control %s\n",
		fmt.Sprint(rep.Settings["rounds"]), rep.Settings["dur_s"], rep.Date, m["cpu_model"], m["nproc"], m["kernel"], m["go"], m["loadavg_start"], m["loadavg_end"], m["library_congestion_control"])
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
	return m
}
