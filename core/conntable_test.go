package core

import (
	"math/rand/v2"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fakeConn stands in for a *peerConn in the connection table's tests. Its
// fields never change after it is made, so the table may read them from
// any goroutine.
type fakeConn struct {
	addr netip.AddrPort
	used uint64
	name string
}

func (f *fakeConn) peerAddr() netip.AddrPort { return f.addr }
func (f *fakeConn) lastUsed() uint64         { return f.used }
func (f *fakeConn) String() string           { return f.name }

func tap(port uint16) netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port)
}

func fconn(port uint16, used uint64) *fakeConn {
	return &fakeConn{addr: tap(port), used: used, name: tap(port).String()}
}

type fakeTable = connTable[*fakeConn]

// liveAddrs is the table's map as a sorted list of ports.
func liveAddrs(t *fakeTable) []uint16 {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := []uint16{}
	for a := range t.live {
		out = append(out, a.Port())
	}
	slices.Sort(out)
	return out
}

func ports(cs []*fakeConn) []uint16 {
	out := []uint16{}
	for _, c := range cs {
		out = append(out, c.addr.Port())
	}
	return out
}

func keepNew(*fakeConn) bool { return false }

func TestTableLookup(t *testing.T) {
	tb := newConnTable[*fakeConn](4)
	_, ok := tb.lookup(tap(1))
	require.False(t, ok, "empty table")
	a := fconn(1, 1)
	require.True(t, tb.track(a))
	_, ok = tb.lookup(tap(1))
	require.False(t, ok, "tracked is not live")
	inserted, evicted := tb.insert(a, keepNew)
	require.True(t, inserted)
	require.Empty(t, evicted)
	got, ok := tb.lookup(tap(1))
	require.True(t, ok)
	require.Same(t, a, got)
	_, ok = tb.lookup(tap(2))
	require.False(t, ok, "another address")
	require.Equal(t, 1, tb.size())
}

func TestTableConnOrDial(t *testing.T) {
	tb := newConnTable[*fakeConn](4)
	a := fconn(1, 1)
	tb.track(a)
	tb.insert(a, keepNew)

	// A live connection is returned as is.
	c, d, start, evicted, err := tb.connOrDial(tap(1))
	require.NoError(t, err)
	require.Same(t, a, c)
	require.Nil(t, d)
	require.False(t, start)
	require.Empty(t, evicted)

	// No connection: a new dial, which the caller starts.
	c, d1, start, evicted, err := tb.connOrDial(tap(2))
	require.NoError(t, err)
	require.Nil(t, c)
	require.NotNil(t, d1)
	require.True(t, start)
	require.Empty(t, evicted)

	// A dial in progress is joined, not started again.
	c, d2, start, _, err := tb.connOrDial(tap(2))
	require.NoError(t, err)
	require.Nil(t, c)
	require.Same(t, d1, d2)
	require.False(t, start)

	// A stale dialDone does not forget the newer dial.
	tb.dialDone(tap(2), &dialOp{done: make(chan struct{})})
	_, d3, start, _, _ := tb.connOrDial(tap(2))
	require.Same(t, d1, d3)
	require.False(t, start)

	// Once the dial landed its connection is returned.
	b := fconn(2, 2)
	tb.track(b)
	inserted, _ := tb.insert(b, keepNew)
	require.True(t, inserted)
	tb.dialDone(tap(2), d1)
	c, d, start, _, err = tb.connOrDial(tap(2))
	require.NoError(t, err)
	require.Same(t, b, c)
	require.Nil(t, d)
	require.False(t, start)

	// A dial that failed (nothing inserted) is forgotten: the next caller
	// starts a new one.
	_, d4, start, _, _ := tb.connOrDial(tap(3))
	require.True(t, start)
	tb.dialDone(tap(3), d4)
	_, d5, start, _, _ := tb.connOrDial(tap(3))
	require.True(t, start)
	require.NotSame(t, d4, d5)
}

// TestTableMakeRoom covers the choice of eviction victims, through both
// callers of makeRoomLocked.
func TestTableMakeRoom(t *testing.T) {
	type liveConn struct {
		port uint16
		used uint64
	}
	cases := []struct {
		name  string
		max   int
		live  []liveConn
		dials []uint16
		// Exactly one of dial and insert is set: the port of the call.
		dial, insert uint16
		evicted      []uint16 // in order
		after        []uint16 // the map afterwards
	}{
		{name: "room left", max: 3, live: []liveConn{{1, 1}, {2, 2}}, dial: 3, evicted: []uint16{}, after: []uint16{1, 2}},
		{name: "full map evicts the least recently used", max: 2, live: []liveConn{{1, 5}, {2, 3}}, dial: 3, evicted: []uint16{2}, after: []uint16{1}},
		{name: "least recently used regardless of port", max: 3, live: []liveConn{{1, 9}, {2, 4}, {3, 7}}, dial: 4, evicted: []uint16{2}, after: []uint16{1, 3}},
		{name: "the new dial counts once", max: 2, live: []liveConn{{1, 1}}, dial: 3, evicted: []uint16{}, after: []uint16{1}},
		{name: "dials in progress count", max: 3, live: []liveConn{{1, 1}, {2, 2}}, dials: []uint16{4}, dial: 3, evicted: []uint16{1}, after: []uint16{2}},
		{name: "several victims, dials never evicted", max: 2, live: []liveConn{{1, 2}, {2, 1}}, dials: []uint16{4, 5}, dial: 3, evicted: []uint16{2, 1}, after: []uint16{}},
		{name: "only dials in flight: nothing to evict", max: 1, dials: []uint16{4}, dial: 3, evicted: []uint16{}, after: []uint16{}},
		{name: "insert of a dialed connection counts it once", max: 2, live: []liveConn{{1, 1}}, dials: []uint16{3}, insert: 3, evicted: []uint16{}, after: []uint16{1, 3}},
		{name: "insert without a dial", max: 2, live: []liveConn{{1, 1}, {2, 2}}, insert: 3, evicted: []uint16{1}, after: []uint16{2, 3}},
		{name: "insert counts other dials", max: 3, live: []liveConn{{1, 2}, {2, 1}}, dials: []uint16{3, 4}, insert: 3, evicted: []uint16{2}, after: []uint16{1, 3}},
		{name: "insert into a map of dials only", max: 1, dials: []uint16{4, 5}, insert: 3, evicted: []uint16{}, after: []uint16{3}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tb := newConnTable[*fakeConn](tc.max)
			for _, l := range tc.live {
				c := fconn(l.port, l.used)
				require.True(t, tb.track(c))
				tb.mu.Lock()
				tb.live[c.addr] = c // set up directly: insert would evict
				tb.mu.Unlock()
			}
			tb.mu.Lock()
			for _, p := range tc.dials {
				// Set up directly: connOrDial would make room.
				tb.dials[tap(p)] = &dialOp{done: make(chan struct{})}
			}
			tb.mu.Unlock()
			var evicted []*fakeConn
			if tc.dial != 0 {
				_, d, start, ev, err := tb.connOrDial(tap(tc.dial))
				require.NoError(t, err)
				require.NotNil(t, d)
				require.True(t, start)
				evicted = ev
			} else {
				c := fconn(tc.insert, 100)
				require.True(t, tb.track(c))
				inserted, ev := tb.insert(c, func(*fakeConn) bool {
					t.Fatal("keepOld called without a live connection at the address")
					return false
				})
				require.True(t, inserted)
				evicted = ev
			}
			require.Equal(t, tc.evicted, ports(evicted), "victims")
			require.Equal(t, tc.after, liveAddrs(tb), "map afterwards")
			// Dials are untouched: each is still joined, not restarted.
			for _, p := range tc.dials {
				_, d, start, _, err := tb.connOrDial(tap(p))
				if _, live := tb.lookup(tap(p)); live {
					continue
				}
				require.NoError(t, err)
				require.NotNil(t, d, "dial to %d", p)
				require.False(t, start, "the dial to %d was forgotten", p)
			}
			// Victims leave the map but stay tracked (they drain).
			tb.mu.Lock()
			for _, v := range evicted {
				_, tracked := tb.all[v]
				require.True(t, tracked, "victim %v no longer tracked", v)
			}
			tb.mu.Unlock()
		})
	}
}

func TestTableInsertKeepOld(t *testing.T) {
	for _, keep := range []bool{true, false} {
		name := map[bool]string{true: "keep old", false: "replace old"}[keep]
		t.Run(name, func(t *testing.T) {
			tb := newConnTable[*fakeConn](2)
			old := fconn(1, 1)
			other := fconn(2, 2)
			for _, c := range []*fakeConn{old, other} {
				tb.track(c)
				ok, ev := tb.insert(c, keepNew)
				require.True(t, ok)
				require.Empty(t, ev)
			}
			nc := fconn(1, 3)
			tb.track(nc)
			var asked *fakeConn
			inserted, evicted := tb.insert(nc, func(o *fakeConn) bool { asked = o; return keep })
			require.Same(t, old, asked, "keepOld is asked about the live connection at the address")
			cur, ok := tb.lookup(tap(1))
			require.True(t, ok)
			if keep {
				require.False(t, inserted)
				require.Empty(t, evicted)
				require.Same(t, old, cur)
			} else {
				require.True(t, inserted)
				// Only the replaced one: the map did not grow, so
				// nothing else is evicted.
				require.Equal(t, []*fakeConn{old}, evicted)
				require.Same(t, nc, cur)
			}
			require.Equal(t, []uint16{1, 2}, liveAddrs(tb))
		})
	}
	t.Run("same connection again", func(t *testing.T) {
		// A full map: the connection already in it must not count twice.
		tb := newConnTable[*fakeConn](2)
		c, other := fconn(1, 2), fconn(2, 1)
		tb.track(c)
		tb.track(other)
		tb.insert(c, keepNew)
		tb.insert(other, keepNew)
		inserted, evicted := tb.insert(c, func(*fakeConn) bool {
			t.Fatal("keepOld asked about the connection itself")
			return true
		})
		require.True(t, inserted)
		require.Empty(t, evicted)
		require.Equal(t, []uint16{1, 2}, liveAddrs(tb))

		// A dial makes the map overfull: the victim is the other
		// connection, never the one being inserted, although it is the
		// least recently used.
		tb.mu.Lock()
		tb.dials[tap(3)] = &dialOp{done: make(chan struct{})}
		tb.mu.Unlock()
		lru := fconn(4, 0)
		tb.mu.Lock()
		tb.live[lru.addr] = lru // overfull, set up directly
		tb.all[lru] = struct{}{}
		tb.mu.Unlock()
		inserted, evicted = tb.insert(lru, keepNew)
		require.True(t, inserted)
		require.ElementsMatch(t, []*fakeConn{other, c}, evicted)
		require.Equal(t, []uint16{4}, liveAddrs(tb))
	})
}

func TestTableInsertAfterCloseRefused(t *testing.T) {
	tb := newConnTable[*fakeConn](2)
	a := fconn(1, 1)
	tb.track(a)
	tb.insert(a, keepNew)
	tb.close()
	b := fconn(2, 2)
	inserted, evicted := tb.insert(b, keepNew)
	require.False(t, inserted)
	require.Empty(t, evicted)
	_, ok := tb.lookup(tap(2))
	require.False(t, ok)
	require.Equal(t, 0, tb.size())
}

func TestTableRemoveOnlyTheSameConnection(t *testing.T) {
	tb := newConnTable[*fakeConn](2)
	older, newer := fconn(1, 1), fconn(1, 2)
	tb.track(older)
	tb.insert(older, keepNew)
	tb.track(newer)
	_, evicted := tb.insert(newer, keepNew)
	require.Equal(t, []*fakeConn{older}, evicted)

	require.False(t, tb.remove(older), "the older connection is no longer in the map")
	cur, ok := tb.lookup(tap(1))
	require.True(t, ok, "removing the older connection took the newer one out")
	require.Same(t, newer, cur)

	require.False(t, tb.remove(fconn(1, 3)), "a connection never inserted")
	require.Equal(t, 1, tb.size())

	require.True(t, tb.remove(newer))
	_, ok = tb.lookup(tap(1))
	require.False(t, ok)
	require.False(t, tb.remove(newer), "second remove")
	require.Equal(t, 0, tb.size())
}

func TestTableRemoveAddr(t *testing.T) {
	tb := newConnTable[*fakeConn](4)
	drainingA, drainingB := fconn(1, 1), fconn(1, 2)
	live := fconn(1, 3)
	elsewhere := fconn(2, 4)
	for _, c := range []*fakeConn{drainingA, drainingB, live, elsewhere} {
		require.True(t, tb.track(c))
		tb.insert(c, keepNew) // each connection to port 1 replaces the one before
	}
	// A connection that already ended is not reported.
	gone := fconn(1, 5)
	tb.track(gone)
	require.True(t, tb.gone(gone))

	got, found, draining := tb.removeAddr(tap(1))
	require.True(t, found)
	require.Same(t, live, got)
	require.ElementsMatch(t, []*fakeConn{drainingA, drainingB}, draining, "draining ones, not the live one")
	_, ok := tb.lookup(tap(1))
	require.False(t, ok, "the live connection left the map")
	other, ok := tb.lookup(tap(2))
	require.True(t, ok, "another address is untouched")
	require.Same(t, elsewhere, other)

	// Still tracked: they drain, and gone reports each once.
	tb.mu.Lock()
	for _, c := range []*fakeConn{drainingA, drainingB, live} {
		_, tracked := tb.all[c]
		require.True(t, tracked)
	}
	tb.mu.Unlock()

	// Again, with no live connection: only the draining ones (now
	// including the one just taken out).
	_, found, draining = tb.removeAddr(tap(1))
	require.False(t, found)
	require.ElementsMatch(t, []*fakeConn{drainingA, drainingB, live}, draining)

	// An address with nothing at all.
	_, found, draining = tb.removeAddr(tap(9))
	require.False(t, found)
	require.Empty(t, draining)
}

func TestTableGoneOnce(t *testing.T) {
	tb := newConnTable[*fakeConn](2)
	c := fconn(1, 1)
	require.True(t, tb.track(c))
	tb.insert(c, keepNew)
	require.True(t, tb.gone(c))
	_, ok := tb.lookup(tap(1))
	require.False(t, ok, "gone takes the connection out of the map")
	require.False(t, tb.gone(c), "second gone")

	require.False(t, tb.gone(fconn(2, 2)), "never tracked")

	// A connection that was never tracked (or is already gone) is not
	// inserted: a connection that ended while it got ready must not sit
	// in the map.
	u := fconn(3, 3)
	inserted, _ := tb.insert(u, keepNew)
	require.False(t, inserted)
	require.False(t, tb.gone(u))
	_, ok = tb.lookup(tap(3))
	require.False(t, ok)
	g := fconn(4, 4)
	tb.track(g)
	tb.gone(g)
	inserted, _ = tb.insert(g, keepNew)
	require.False(t, inserted, "gone before it was inserted")

	// gone of an older connection leaves the newer one mapped.
	older, newer := fconn(4, 1), fconn(4, 2)
	tb.track(older)
	tb.insert(older, keepNew)
	tb.track(newer)
	tb.insert(newer, keepNew)
	require.True(t, tb.gone(older))
	cur, ok := tb.lookup(tap(4))
	require.True(t, ok)
	require.Same(t, newer, cur)
}

func TestTableClose(t *testing.T) {
	tb := newConnTable[*fakeConn](4)
	a, b := fconn(1, 1), fconn(2, 2)
	draining := fconn(1, 0)
	notReady := fconn(3, 3) // tracked, never inserted (waiting for HELLO)
	ended := fconn(4, 4)
	for _, c := range []*fakeConn{draining, a, b, notReady, ended} {
		require.True(t, tb.track(c))
	}
	for _, c := range []*fakeConn{draining, a, b, ended} {
		tb.insert(c, keepNew)
	}
	require.True(t, tb.gone(ended))
	_, d, start, _, err := tb.connOrDial(tap(5))
	require.NoError(t, err)
	require.True(t, start)
	require.Equal(t, 2, tb.size())

	all := tb.close()
	require.ElementsMatch(t, []*fakeConn{draining, a, b, notReady}, all)
	require.Equal(t, 0, tb.size())
	for _, p := range []uint16{1, 2, 5, 6} {
		_, ok := tb.lookup(tap(p))
		require.False(t, ok)
		c, d, start, ev, err := tb.connOrDial(tap(p))
		require.ErrorIs(t, err, ErrClosed)
		require.Nil(t, c)
		require.Nil(t, d)
		require.False(t, start)
		require.Empty(t, ev)
	}
	require.False(t, tb.track(fconn(6, 6)))
	// The dial in flight lands after close: refused, and its end is
	// harmless.
	late := fconn(5, 5)
	inserted, _ := tb.insert(late, keepNew)
	require.False(t, inserted)
	tb.dialDone(tap(5), d)
	// What close returned still ends normally.
	for _, c := range all {
		require.True(t, tb.gone(c))
	}
}

func TestTableSize(t *testing.T) {
	tb := newConnTable[*fakeConn](3)
	require.Equal(t, 0, tb.size())
	for i := uint16(1); i <= 5; i++ {
		c := fconn(i, uint64(i))
		tb.track(c)
		tb.insert(c, keepNew)
		require.Equal(t, min(int(i), 3), tb.size(), "after %d inserts", i)
	}
	tb.connOrDial(tap(9)) // a dial does not change the size until it lands
	require.Equal(t, 2, tb.size(), "the dial made room")
	c, _ := tb.lookup(tap(5))
	tb.remove(c)
	require.Equal(t, 1, tb.size())
}

// checkTableInvariants inspects the table under its own lock: the map
// never holds more than max connections, every connection in it is
// tracked and keyed by its own address, and none of them has ended.
func checkTableInvariants(t *testing.T, tb *fakeTable, ended func(*fakeConn) bool) bool {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	ok := true
	if len(tb.live) > tb.max {
		t.Errorf("%d live connections, max %d", len(tb.live), tb.max)
		ok = false
	}
	for a, c := range tb.live {
		if c.addr != a {
			t.Errorf("connection to %v mapped at %v", c.addr, a)
			ok = false
		}
		if _, tracked := tb.all[c]; !tracked {
			t.Errorf("live connection %v not tracked", c)
			ok = false
		}
		if ended(c) {
			t.Errorf("live connection %v already gone", c)
			ok = false
		}
	}
	return ok
}

// TestTableConcurrentInvariants runs the endpoint's use of the table from
// many goroutines at random: senders look up or dial, dialers track and
// insert what they dialed, connections are removed (drains) and end
// (gone), while a checker inspects the invariants. The owner of a
// connection (its dialer) is the only one to call gone, once, after its
// insert, as the endpoint does.
func TestTableConcurrentInvariants(t *testing.T) {
	const (
		maxConns   = 4
		addrs      = 12
		goroutines = 16
		ops        = 2000
	)
	tb := newConnTable[*fakeConn](maxConns)
	var clock atomic.Uint64
	var (
		mu     sync.Mutex
		ended  = map[*fakeConn]bool{}
		owned  []*fakeConn // every connection made
		goneOK = map[*fakeConn]int{}
	)
	isEnded := func(c *fakeConn) bool {
		mu.Lock()
		defer mu.Unlock()
		return ended[c]
	}
	endConn := func(c *fakeConn) {
		r := tb.gone(c)
		mu.Lock()
		ended[c] = true
		if r {
			goneOK[c]++
		}
		mu.Unlock()
	}

	stop := make(chan struct{})
	checkerDone := make(chan struct{})
	var checks atomic.Int64
	go func() {
		defer close(checkerDone)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if !checkTableInvariants(t, tb, isEnded) {
				return
			}
			checks.Add(1)
			runtime.Gosched()
		}
	}()

	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, 7))
			var mine []*fakeConn // connections this goroutine dialed and has not ended
			for i := 0; i < ops; i++ {
				addr := tap(uint16(1 + rng.IntN(addrs)))
				switch r := rng.IntN(10); {
				case r < 6: // a send
					c, d, start, evicted, err := tb.connOrDial(addr)
					if err != nil {
						t.Errorf("connOrDial: %v", err)
						return
					}
					_ = evicted // victims drain; their owners end them
					if d == nil {
						if c == nil || c.addr != addr {
							t.Errorf("connOrDial(%v) returned %v", addr, c)
							return
						}
						if rng.IntN(4) == 0 {
							tb.remove(c) // found draining
						}
						continue
					}
					if !start {
						select {
						case <-d.done:
						case <-time.After(10 * time.Second):
							t.Errorf("dial to %v never finished", addr)
							return
						}
						continue
					}
					// We run the dial.
					if rng.IntN(5) == 0 {
						d.err = ErrConnection // failed: nothing inserted
					} else {
						c := &fakeConn{addr: addr, used: clock.Add(1), name: addr.String()}
						if !tb.track(c) {
							t.Errorf("track refused before close")
						}
						mu.Lock()
						owned = append(owned, c)
						mu.Unlock()
						tb.insert(c, func(old *fakeConn) bool { return rng.IntN(2) == 0 })
						mine = append(mine, c)
					}
					tb.dialDone(addr, d)
					close(d.done)
				case r < 9 && len(mine) > 0: // one of ours ends
					j := rng.IntN(len(mine))
					c := mine[j]
					mine = slices.Delete(mine, j, j+1)
					if rng.IntN(2) == 0 {
						tb.remove(c) // drained first
					}
					endConn(c)
				default:
					if n := tb.size(); n > maxConns {
						t.Errorf("size %d > max %d", n, maxConns)
					}
					checkTableInvariants(t, tb, isEnded)
				}
			}
			// Leave some connections running for close to find.
			for _, c := range mine {
				if rng.IntN(3) != 0 {
					endConn(c)
				}
			}
		}(uint64(g))
	}
	wg.Wait()
	close(stop)
	<-checkerDone
	require.False(t, t.Failed())
	require.True(t, checkTableInvariants(t, tb, isEnded))
	t.Logf("%d connections made, %d invariant checks", len(owned), checks.Load())
	require.NotEmpty(t, owned)

	// No dial is left behind.
	tb.mu.Lock()
	require.Empty(t, tb.dials)
	tb.mu.Unlock()

	var running []*fakeConn
	for _, c := range owned {
		require.LessOrEqual(t, goneOK[c], 1, "gone reported %v more than once", c)
		if ended[c] {
			require.Equal(t, 1, goneOK[c], "gone of %v not reported", c)
		} else {
			running = append(running, c)
		}
	}
	require.ElementsMatch(t, running, tb.close(), "close returns exactly the connections not yet gone")
	require.Equal(t, 0, tb.size())
}
