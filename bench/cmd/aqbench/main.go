// Command aqbench is the benchmark suite of aranya-quic (make bench).
//
//	aqbench run [flags]        build nothing; run every scenario and baseline,
//	                           alternating, print the table, write the JSON
//	                           and the chart
//	aqbench go SCENARIO [flags] one Go baseline measurement (raw quic-go or
//	                           TLS over TCP), one JSON line on stdout
//	aqbench engine SCENARIO    the engine (core) from Go, no C API: splits
//	                           cgo/capi cost from engine cost (diagnostic)
//	aqbench chart -in latest.json -out ratios.png
//	aqbench table -in latest.json   the markdown table again
//	aqbench docs [-in latest.json] [-doc docs/PERFORMANCE.md] [-check]
//	                           rewrite the documents' generated blocks
//	                           from the reports
//	aqbench wakeup [flags]     the receive wake-up candidates against each
//	                           other (bench/results/wakeup.json)
//
// The library side is bench/c/aqbench.c (through the C API) and the quinn
// baseline is bench/quinn; `run` starts each measurement as its own
// process, so no measurement shares a runtime or a heap with another.
package main

import (
	"encoding/json"
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: aqbench run|go|engine|chart|table|docs ...")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "run":
		err = runMain(os.Args[2:])
	case "go":
		err = baselineMain(os.Args[2:])
	case "engine":
		err = engineMain(os.Args[2:])
	case "chart":
		err = chartMain(os.Args[2:])
	case "table":
		err = tableMain(os.Args[2:])
	case "docs":
		err = docsMain(os.Args[2:])
	case "wakeup":
		err = wakeupMain(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "aqbench:", err)
		os.Exit(1)
	}
}

// result is the line every driver (C, Go, Rust) prints.
type result struct {
	Scenario string             `json:"scenario"`
	Impl     string             `json:"impl"`
	Metrics  map[string]float64 `json:"metrics"`
}

func printResult(scenario string, m map[string]float64) error {
	impl := "quic-go"
	switch {
	case len(scenario) >= 3 && scenario[:3] == "tls":
		impl = "tls-tcp"
	case len(scenario) >= 6 && scenario[:6] == "engine":
		impl = "engine-go"
	}
	return json.NewEncoder(os.Stdout).Encode(result{Scenario: scenario, Impl: impl, Metrics: m})
}
