package main

import (
	"flag"
	"fmt"
	"strconv"
	"time"
)

// durFlag is a -dur that takes a Go duration ("1.5s", "500ms") or bare
// seconds ("1", "0.5"), since the orchestrator and people both pass it.
type durFlag struct{ d *time.Duration }

func (f durFlag) String() string {
	if f.d == nil {
		return ""
	}
	return f.d.String()
}

func (f durFlag) Set(s string) error {
	if d, err := time.ParseDuration(s); err == nil {
		*f.d = d
		return nil
	}
	sec, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Errorf("%q is neither a duration nor seconds", s)
	}
	*f.d = time.Duration(sec * float64(time.Second))
	return nil
}

// durationFlag defines a durFlag on fs with default def.
func durationFlag(fs *flag.FlagSet, name string, def time.Duration, usage string) *time.Duration {
	d := def
	fs.Var(durFlag{&d}, name, usage)
	return &d
}
