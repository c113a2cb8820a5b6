package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// wakeupMain measures the candidate receive paths of the C API against
// each other and raw quic-go, alternating in rounds like `run`:
//
//   - go-wait: receive_timeout waiting inside Go (the shipped pull path);
//   - futex: receive_timeout waiting on a futex in C, from the library
//     built at the commit that had it (-futex-lib);
//   - callback: the config's receive callback (shipped).
//
// The futex build is not shipped; its numbers are why.
func wakeupMain(args []string) error {
	fs := flag.NewFlagSet("wakeup", flag.ExitOnError)
	rounds := fs.Int("rounds", 5, "rounds")
	dur := fs.Float64("dur", 1.0, "seconds per measurement")
	binC := fs.String("c", "build/bench/aqbench-c", "the C driver")
	futexLib := fs.String("futex-lib", "build/bench/variants/futex", "directory holding the futex-wait libaranya_quic.so")
	futexCommit := fs.String("futex-commit", "", "the commit the futex library was built from (recorded)")
	certs := fs.String("certs", "build/bench/certs", "examples/certgen output")
	out := fs.String("out", "bench/results/wakeup.json", "JSON report")
	fs.Parse(args)
	self, err := os.Executable()
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(*futexLib, "libaranya_quic.so")); err != nil {
		return fmt.Errorf("the futex-wait library: %w (see bench/README.md, \"Receive wake-up\")", err)
	}
	d := strconv.FormatFloat(*dur, 'f', -1, 64)
	ct := "certs=" + *certs
	futexEnv := []string{"LD_LIBRARY_PATH=" + *futexLib}
	c := func(key string, env []string, a ...string) job {
		return job{Key: key, Argv: append(append([]string{*binC}, a...), ct), Env: env}
	}
	jobs := []job{
		c("go-wait/pingpong", nil, "pingpong", "size=64", "dur="+d, "cc=reno"),
		c("futex/pingpong", futexEnv, "pingpong", "size=64", "dur="+d, "cc=reno"),
		c("callback/pingpong", nil, "pingpong", "size=64", "dur="+d, "cc=reno", "recv=callback"),
		{Key: "quic-go/pingpong", Argv: []string{self, "go", "quic-pingpong", "-size=64", "-dur=" + d, "-certs=" + *certs}},
		c("go-wait/msg64", nil, "msg", "size=64", "dur="+d, "cc=reno"),
		c("futex/msg64", futexEnv, "msg", "size=64", "dur="+d, "cc=reno"),
	}
	samples := map[string][]sample{}
	start := time.Now()
	for r := 0; r < *rounds; r++ {
		for i := range jobs {
			j := jobs[(i+r)%len(jobs)]
			m, err := runJob(j, 2*time.Minute)
			if err != nil {
				return fmt.Errorf("round %d %s: %w", r+1, j.Key, err)
			}
			fmt.Fprintf(os.Stderr, "  %-20s %s\n", j.Key, brief(m))
			samples[j.Key] = append(samples[j.Key], sample{Round: r, Metrics: m})
		}
	}
	med := map[string]map[string]float64{}
	for k, ss := range samples {
		med[k] = medians(ss)
	}
	cmds := map[string][]string{}
	for _, j := range jobs {
		cmds[j.Key] = append(append([]string(nil), j.Env...), j.Argv...)
	}
	rep := map[string]any{
		"date":         time.Now().UTC().Format(time.RFC3339),
		"machine":      machineInfo(),
		"settings":     map[string]any{"rounds": *rounds, "dur_s": *dur, "futex_commit": *futexCommit},
		"medians":      med,
		"samples":      samples,
		"commands":     cmds,
		"wall_seconds": time.Since(start).Seconds(),
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
		return err
	}
	keys := make([]string, 0, len(med))
	for k := range med {
		keys = append(keys, k)
	}
	fmt.Printf("wrote %s: %s\n", *out, strings.Join(keys, ", "))
	return nil
}
