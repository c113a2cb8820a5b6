package main

import (
	"fmt"
	"syscall"
	"time"
)

// processCPU is the user+system CPU time the whole process (every thread:
// senders, receivers, quic-go's and the runtime's goroutines) has used so
// far. Throughput modes divide the difference over a run by the messages
// received, so an implementation that buys speed by burning more cores
// shows it.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		// Only a bad pointer makes it fail; a silent 0 would be a wrong
		// figure in the results.
		panic(fmt.Errorf("getrusage: %w", err))
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuMeter spans one measurement: start it when the sender starts, stop
// it when the receiver has its last message.
type cpuMeter struct{ start, end time.Duration }

func startCPU() cpuMeter { return cpuMeter{start: processCPU()} }

func (c *cpuMeter) stop() { c.end = processCPU() }

// perMsg is the CPU nanoseconds per message received, 0 if none arrived.
func (c cpuMeter) perMsg(msgs int64) float64 {
	if msgs <= 0 || c.end <= c.start {
		return 0
	}
	return float64(c.end-c.start) / float64(msgs)
}
