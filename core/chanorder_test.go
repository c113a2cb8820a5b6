package core

import (
	"context"
	"fmt"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func testRef(port uint16, label string) chanRef {
	return chanRef{addr: tap(port), key: chanKey{kind: KindChannel, teamID: team(1), label: label}}
}

func isDone(l *orderLink) bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

func TestOrderClaimWaitFinish(t *testing.T) {
	o := newChannelOrder()
	ref := testRef(1, "a")
	require.Equal(t, 0, o.active())

	first, wait := o.claim(ref)
	require.NotNil(t, first, "a fresh channel is claimed at once")
	require.Nil(t, wait)
	require.False(t, isDone(first))
	require.Equal(t, 1, o.active())

	// While the first stream is active the next one waits for it.
	for i := 0; i < 2; i++ {
		mine, wait := o.claim(ref)
		require.Nil(t, mine)
		require.Same(t, first, wait, "the link to wait on is the active one")
	}
	require.Equal(t, 1, o.active())

	first.finish()
	require.True(t, isDone(first), "finish closes done")
	require.Equal(t, 0, o.active(), "a finished channel leaves the registry")

	second, wait := o.claim(ref)
	require.NotNil(t, second)
	require.Nil(t, wait)
	require.NotSame(t, first, second)
	require.False(t, isDone(second))
	require.Equal(t, 1, o.active())

	// The old link finished again: nothing changes (and no panic from a
	// second close).
	require.NotPanics(t, first.finish)
	require.Equal(t, 1, o.active())
	mine, wait := o.claim(ref)
	require.Nil(t, mine, "finishing an old link again freed the channel")
	require.Same(t, second, wait)

	second.finish()
	require.NotPanics(t, second.finish)
	require.Equal(t, 0, o.active())
}

// TestOrderFinishOfAnOlderLinkKeepsTheNewer sets up, by hand, a registry
// in which an unfinished link is no longer its channel's latest, and checks
// that finishing it does not free the channel.
func TestOrderFinishOfAnOlderLinkKeepsTheNewer(t *testing.T) {
	o := newChannelOrder()
	ref := testRef(1, "a")
	older, _ := o.claim(ref)
	newer := &orderLink{order: o, ref: ref, done: make(chan struct{})}
	o.mu.Lock()
	o.last[ref] = newer
	o.mu.Unlock()

	older.finish()
	require.True(t, isDone(older))
	require.Equal(t, 1, o.active(), "the newer link was deleted")
	mine, wait := o.claim(ref)
	require.Nil(t, mine)
	require.Same(t, newer, wait)

	newer.finish()
	require.Equal(t, 0, o.active())
}

func TestOrderRefsAreIndependent(t *testing.T) {
	base := testRef(1, "a")
	variants := map[string]chanRef{
		"address":              {addr: tap(2), key: base.key},
		"port of another host": {addr: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), 1), key: base.key},
		"kind":                 {addr: base.addr, key: chanKey{kind: KindSync, teamID: base.key.teamID, label: base.key.label}},
		"team":                 {addr: base.addr, key: chanKey{kind: KindChannel, teamID: team(2), label: base.key.label}},
		"label":                {addr: base.addr, key: chanKey{kind: KindChannel, teamID: base.key.teamID, label: "b"}},
		"sync type":            {addr: base.addr, key: chanKey{kind: KindSync, syncType: 2}},
	}
	o := newChannelOrder()
	held, _ := o.claim(base)
	require.NotNil(t, held)
	links := map[string]*orderLink{}
	for name, ref := range variants {
		l, wait := o.claim(ref)
		require.NotNil(t, l, "%s: blocked by another channel", name)
		require.Nil(t, wait, name)
		links[name] = l
	}
	require.Equal(t, 1+len(variants), o.active())

	// Sync types are channels of their own too.
	sync1, _ := o.claim(chanRef{addr: base.addr, key: chanKey{kind: KindSync, syncType: 1}})
	require.NotNil(t, sync1)

	// Finishing one leaves the others active.
	links["label"].finish()
	require.Equal(t, 1+len(variants), o.active())
	mine, wait := o.claim(base)
	require.Nil(t, mine)
	require.Same(t, held, wait)
	for name, l := range links {
		require.Equal(t, name == "label", isDone(l), name)
	}
	// The same ref built from a fresh string still names the channel.
	label := string([]byte{'a'})
	mine, wait = o.claim(chanRef{addr: tap(1), key: chanKey{kind: KindChannel, teamID: team(1), label: label}})
	require.Nil(t, mine)
	require.Same(t, held, wait)
}

func TestOrderAwait(t *testing.T) {
	o := newChannelOrder()
	ref := testRef(1, "a")
	ctx := sendCtx(t)

	first, err := o.await(ctx, ref, nil)
	require.NoError(t, err, "a fresh channel is claimed at once")
	require.NotNil(t, first)

	// Blocked until the first finishes; a deadline ends the wait.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	l, err := o.await(short, ref, nil)
	cancel()
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Nil(t, l)
	require.Equal(t, 1, o.active(), "a failed await left a claim behind")

	got := make(chan *orderLink, 1)
	go func() {
		l, err := o.await(ctx, ref, nil)
		if err != nil {
			t.Errorf("await: %v", err)
		}
		got <- l
	}()
	select {
	case <-got:
		t.Fatal("await returned while the channel was held")
	case <-time.After(50 * time.Millisecond):
	}
	first.finish()
	var second *orderLink
	select {
	case second = <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("await did not return after finish")
	}
	require.NotNil(t, second)
	require.NotSame(t, first, second)
	mine, wait := o.claim(ref)
	require.Nil(t, mine)
	require.Same(t, second, wait, "await's link is the channel's active one")
	second.finish()
	require.Equal(t, 0, o.active())
}

func TestOrderActiveCounts(t *testing.T) {
	o := newChannelOrder()
	var links []*orderLink
	for i := 0; i < 10; i++ {
		l, _ := o.claim(testRef(1, fmt.Sprint(i)))
		links = append(links, l)
		require.Equal(t, i+1, o.active())
	}
	// A blocked claim does not count.
	_, wait := o.claim(testRef(1, "0"))
	require.NotNil(t, wait)
	require.Equal(t, 10, o.active())
	for i, l := range links {
		l.finish()
		l.finish()
		require.Equal(t, 9-i, o.active())
	}
}

// TestOrderConcurrentHoldersNeverOverlap has goroutines take turns on the
// same channels: each claims (half of them with await), waits on the link
// it is given when blocked,
// holds the channel briefly and finishes. No two holders of a channel may
// overlap, and every turn is taken.
func TestOrderConcurrentHoldersNeverOverlap(t *testing.T) {
	const (
		channels   = 3
		goroutines = 12
		turns      = 200
	)
	o := newChannelOrder()
	refs := make([]chanRef, channels)
	holders := make([]atomic.Int32, channels)
	taken := make([]atomic.Int64, channels)
	var overlaps, waits atomic.Int64
	for i := range refs {
		refs[i] = testRef(1, fmt.Sprint("c", i))
	}
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ch := g % channels
			ref := refs[ch]
			for i := 0; i < turns; i++ {
				var mine *orderLink
				if g%2 == 1 {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					l, err := o.await(ctx, ref, nil)
					cancel()
					if err != nil {
						t.Errorf("await channel %d: %v", ch, err)
						return
					}
					mine = l
				}
				for mine == nil {
					var wait *orderLink
					mine, wait = o.claim(ref)
					if mine != nil {
						break
					}
					waits.Add(1)
					select {
					case <-wait.done:
					case <-time.After(10 * time.Second):
						t.Errorf("waited 10 s for channel %d", ch)
						return
					}
				}
				if n := holders[ch].Add(1); n != 1 {
					overlaps.Add(1)
				}
				if i%16 == 0 {
					time.Sleep(10 * time.Microsecond)
				} else {
					runtime.Gosched()
				}
				taken[ch].Add(1)
				holders[ch].Add(-1) // before finish: the next holder may start at once
				mine.finish()
				if i%3 == 0 {
					mine.finish() // a second path ending the same stream
				}
			}
		}()
	}
	wg.Wait()
	require.Zero(t, overlaps.Load(), "two holders of one channel at once")
	for ch := range taken {
		require.Equal(t, int64(goroutines/channels*turns), taken[ch].Load(), "channel %d", ch)
	}
	require.Equal(t, 0, o.active(), "every channel is free at the end")
	require.NotZero(t, waits.Load(), "the goroutines never contended")
	t.Logf("%d blocked claims", waits.Load())
}

// A later await asks the holder to stop (once), and gets the turn when the
// holder finishes; a holder without a stop function is simply waited for.
func TestOrderAwaitSupersedesTheHolder(t *testing.T) {
	o := newChannelOrder()
	ref := chanRef{addr: netip.MustParseAddrPort("127.0.0.1:9"), key: chanKey{kind: KindChannel, label: "s"}}
	ctx := context.Background()
	var stops atomic.Int32
	var first *orderLink
	first, err := o.await(ctx, ref, func() {
		stops.Add(1)
		go first.finish() // the holder reacts to stop by ending its turn
	})
	require.NoError(t, err)
	second, err := o.await(ctx, ref, nil)
	require.NoError(t, err)
	require.NotSame(t, first, second)
	require.Equal(t, int32(1), stops.Load(), "the holder was asked to stop once")

	// second has no stop: a third await waits until second finishes.
	got := make(chan *orderLink)
	go func() {
		l, _ := o.await(ctx, ref, nil)
		got <- l
	}()
	select {
	case <-got:
		t.Fatal("took the turn of a holder that was not stopped")
	case <-time.After(50 * time.Millisecond):
	}
	second.finish()
	third := <-got
	require.NotNil(t, third)
	third.finish()
}
