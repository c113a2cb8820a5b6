package bbr2

// roundMaxFilter is a windowed maximum keyed by a monotonically increasing
// counter (packet-timed round trips or ProbeBW cycles). It keeps the maximum
// of each of the last len(slots) counter values, which is exact for the small
// windows BBR uses (2 cycles for bandwidth, 10 rounds for ACK aggregation) and
// simpler than a three-sample running filter.
type roundMaxFilter[T int64 | float64] struct {
	slots  []T
	stamps []int64
	set    []bool
}

func newRoundMaxFilter[T int64 | float64](window int) roundMaxFilter[T] {
	return roundMaxFilter[T]{
		slots:  make([]T, window),
		stamps: make([]int64, window),
		set:    make([]bool, window),
	}
}

// update records v for counter value now.
func (f *roundMaxFilter[T]) update(v T, now int64) {
	i := int(now % int64(len(f.slots)))
	if !f.set[i] || f.stamps[i] != now {
		f.slots[i], f.stamps[i], f.set[i] = v, now, true
		return
	}
	f.slots[i] = max(f.slots[i], v)
}

// get returns the maximum over counter values in (now-window, now].
func (f *roundMaxFilter[T]) get(now int64) T {
	var best T
	for i := range f.slots {
		if f.set[i] && f.stamps[i] > now-int64(len(f.slots)) && f.stamps[i] <= now {
			best = max(best, f.slots[i])
		}
	}
	return best
}

func (f *roundMaxFilter[T]) reset() {
	for i := range f.slots {
		f.set[i] = false
	}
}
