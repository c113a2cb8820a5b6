package core

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseAddrStrict(t *testing.T) {
	cases := []struct {
		in   string
		want string // "" means ErrBadAddress
	}{
		{"127.0.0.1:80", "127.0.0.1:80"},
		{"127.0.0.1:1", "127.0.0.1:1"},
		{"[::1]:65535", "[::1]:65535"},
		{"[::ffff:127.0.0.1]:4000", "127.0.0.1:4000"},
		{"10.0.0.1:10", "10.0.0.1:10"},

		{"127.0.0.1:0080", ""},
		{"127.0.0.1:+80", ""},
		{"127.0.0.1:-80", ""},
		{"127.0.0.1:00", ""},
		{"127.0.0.1:0", ""},
		{"127.0.0.1:65536", ""},
		{"127.0.0.1:", ""},
		{"127.0.0.1: 80", ""},
		{"127.0.0.1:0x50", ""},
		{"[::1]:080", ""},
		{"127.0.0.1", ""},
		{"localhost:80", ""},
		{"", ""},
		{"0.0.0.0:80", ""},
		{"[::]:80", ""},
		{"[::ffff:0.0.0.0]:80", ""},
		{"224.0.0.1:80", ""},
		{"[ff02::1]:80", ""},
		{"255.255.255.255:80", ""},
		{"[::ffff:255.255.255.255]:80", ""},
		{"[fe80::1%eth0]:80", ""},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			ap, err := ParseAddr(c.in)
			if c.want == "" {
				require.ErrorIs(t, err, ErrBadAddress)
				require.Contains(t, err.Error(), fmt.Sprintf("%q", c.in), "the error names the input")
				return
			}
			require.NoError(t, err)
			require.Equal(t, netip.MustParseAddrPort(c.want), ap)
		})
	}
}

func TestParseBindAddrStrict(t *testing.T) {
	cases := []struct {
		in  string
		bad string // substring of the error; "" means accepted
	}{
		{"127.0.0.1:0", ""},
		{"127.0.0.1:4433", ""},
		{"0.0.0.0:0", ""},
		{"[::]:0", ""},
		{"[::1]:65535", ""},
		{"192.168.1.10:9", ""},

		{"127.0.0.1:00", "port"},
		{"127.0.0.1:0080", "port"},
		{"127.0.0.1:+80", "port"},
		{"127.0.0.1:65536", "port"},
		{"[::]:00", "port"},
		{"127.0.0.1", `"127.0.0.1"`},
		{"localhost:0", `"localhost:0"`},
		{"224.0.0.1:0", "multicast address cannot be bound"},
		{"239.1.2.3:5000", "multicast address cannot be bound"},
		{"[ff02::1]:0", "multicast address cannot be bound"},
		{"[::ffff:224.0.0.1]:0", "multicast address cannot be bound"},
		{"255.255.255.255:0", "broadcast address cannot be bound"},
		{"[::ffff:255.255.255.255]:0", "broadcast address cannot be bound"},
		{"[fe80::1%eth0]:0", "zone"},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			ap, err := ParseBindAddr(c.in)
			if c.bad == "" {
				require.NoError(t, err)
				require.Equal(t, netip.MustParseAddrPort(c.in), ap)
				return
			}
			require.ErrorIs(t, err, ErrBadAddress)
			require.Contains(t, err.Error(), c.bad)
			require.Contains(t, err.Error(), fmt.Sprintf("%q", c.in), "the error names the input")
		})
	}

	// The engine never binds a multicast address (where Go would set
	// SO_REUSEADDR).
	cfg := peerConfig(t, "alice")
	cfg.BindAddr = "224.0.0.1:0"
	e, err := NewEndpoint(cfg)
	if e != nil {
		e.Close()
	}
	require.ErrorIs(t, err, ErrBadAddress)
}

func TestIsOwnAddr(t *testing.T) {
	cases := []struct {
		local, to string
		want      bool
	}{
		{"127.0.0.1:5000", "127.0.0.1:5000", true},
		{"127.0.0.1:5000", "127.0.0.1:5001", false},
		{"0.0.0.0:5000", "127.0.0.1:5000", true},
		{"[::]:5000", "[::1]:5000", true},
		{"127.0.0.1:5000", "127.0.0.2:5000", false},
		{"0.0.0.0:5000", "127.0.0.2:5000", true},
		{"0.0.0.0:5000", "127.0.0.1:5001", false},
		{"0.0.0.0:5000", "[::1]:5000", false},
		{"[::]:5000", "127.0.0.1:5000", true},
		{"0.0.0.0:5000", "[::ffff:127.0.0.1]:5000", true},
		{"[::ffff:127.0.0.1]:5000", "127.0.0.1:5000", true},
		{"[::1]:5000", "127.0.0.1:5000", false},
		{"127.0.0.1:5000", "[::1]:5000", false},
	}
	for _, c := range cases {
		t.Run(c.local+"->"+c.to, func(t *testing.T) {
			require.Equal(t, c.want, isOwnAddr(netip.MustParseAddrPort(c.local), netip.MustParseAddrPort(c.to)))
		})
	}
	require.False(t, isOwnAddr(netip.AddrPort{}, netip.AddrPort{}))

	t.Run("this host's interface addresses", func(t *testing.T) {
		ifaddrs, err := net.InterfaceAddrs()
		require.NoError(t, err)
		for _, ia := range ifaddrs {
			ipn, ok := ia.(*net.IPNet)
			if !ok {
				continue
			}
			a, ok := netip.AddrFromSlice(ipn.IP)
			require.True(t, ok)
			a = a.Unmap()
			to := netip.AddrPortFrom(a, 5000)
			require.True(t, isOwnAddr(netip.MustParseAddrPort("[::]:5000"), to), "%s", to)
			require.False(t, isOwnAddr(netip.MustParseAddrPort("[::]:5001"), to), "%s", to)
			if a.Is4() {
				require.True(t, isOwnAddr(netip.MustParseAddrPort("0.0.0.0:5000"), to), "%s", to)
			} else {
				require.False(t, isOwnAddr(netip.MustParseAddrPort("0.0.0.0:5000"), to), "%s", to)
			}
		}
	})

	t.Run("lookup is cached", func(t *testing.T) {
		calls := 0
		c := &hostAddrCache{lookup: func() ([]net.Addr, error) {
			calls++
			return []net.Addr{
				&net.IPNet{IP: net.ParseIP("192.0.2.7").To4(), Mask: net.CIDRMask(24, 32)},
				&net.IPNet{IP: net.ParseIP("2001:db8::7"), Mask: net.CIDRMask(64, 128)},
			}, nil
		}}
		any4, any6 := netip.MustParseAddrPort("0.0.0.0:5000"), netip.MustParseAddrPort("[::]:5000")
		for range 100 {
			require.True(t, c.isOwn(any4, netip.MustParseAddrPort("192.0.2.7:5000")))
			require.False(t, c.isOwn(any4, netip.MustParseAddrPort("192.0.2.8:5000")))
			require.True(t, c.isOwn(any6, netip.MustParseAddrPort("[2001:db8::7]:5000")))
			require.True(t, c.isOwn(any6, netip.MustParseAddrPort("192.0.2.7:5000")))
			require.False(t, c.isOwn(any4, netip.MustParseAddrPort("[2001:db8::7]:5000")))
			require.False(t, c.isOwn(netip.MustParseAddrPort("192.0.2.1:5000"), netip.MustParseAddrPort("192.0.2.7:5000")),
				"a socket bound to one address is not reached at another")
		}
		require.Equal(t, 1, calls)
		c.mu.Lock()
		c.at = c.at.Add(-2 * time.Second)
		c.mu.Unlock()
		require.True(t, c.isOwn(any4, netip.MustParseAddrPort("192.0.2.7:5000")))
		require.Equal(t, 2, calls, "looked up again after a second")
	})
}
