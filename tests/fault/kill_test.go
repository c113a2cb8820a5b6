package fault

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aranya-quic/aranya-quic/core"
)

// The helper peer is this test binary re-executed with FAULT_HELPER_PEER
// set: it listens, prints "ADDR <addr>", then prints "MSG <payload>" for
// every message it receives, until killed or its stdin closes.
const helperEnv = "FAULT_HELPER_PEER"

func TestHelperPeer(t *testing.T) {
	if os.Getenv(helperEnv) == "" {
		t.Skip("helper process for TestPeerKilledAndRestarted")
	}
	read := func(name string) []byte {
		b, err := os.ReadFile(os.Getenv(name))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		return b
	}
	e, err := core.NewEndpoint(core.Config{
		BindAddr: os.Getenv("FAULT_BIND"),
		CertPEM:  read("FAULT_CERT"),
		KeyPEM:   read("FAULT_KEY"),
		CAPEM:    read("FAULT_CA"),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "endpoint:", err)
		os.Exit(2)
	}
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	fmt.Fprintf(out, "ADDR %s\n", e.LocalAddr())
	out.Flush()
	go func() {
		io.Copy(io.Discard, os.Stdin)
		e.Close()
		os.Exit(0)
	}()
	buf := make([]byte, 1<<16)
	for {
		_, n, err := e.ReceiveContext(context.Background(), buf)
		if err != nil {
			os.Exit(0)
		}
		mu.Lock()
		fmt.Fprintf(out, "MSG %s\n", buf[:n])
		out.Flush()
		mu.Unlock()
	}
}

type helperPeer struct {
	cmd   *exec.Cmd
	addr  netip.AddrPort
	msgs  chan string
	stdin io.WriteCloser
}

func startHelper(t *testing.T, dir, bind string) *helperPeer {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperPeer$", "-test.count=1")
	cmd.Env = append(os.Environ(),
		helperEnv+"=1",
		"FAULT_BIND="+bind,
		"FAULT_CERT="+filepath.Join(dir, "cert.pem"),
		"FAULT_KEY="+filepath.Join(dir, "key.pem"),
		"FAULT_CA="+filepath.Join(dir, "ca.pem"),
	)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	h := &helperPeer{cmd: cmd, msgs: make(chan string, 1<<16), stdin: stdin}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "ADDR "):
				addrc <- strings.TrimPrefix(line, "ADDR ")
			case strings.HasPrefix(line, "MSG "):
				h.msgs <- strings.TrimPrefix(line, "MSG ")
			}
		}
		close(h.msgs)
	}()
	select {
	case a := <-addrc:
		h.addr, err = netip.ParseAddrPort(a)
		require.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("helper peer did not start")
	}
	return h
}

// A peer process killed with SIGKILL mid-transfer and restarted on the
// same address with the same identity: the sender sees errors, never a
// hang, and after the restart new messages are delivered. Within one run
// of the peer nothing arrives twice or out of order, and nothing arrives
// that Send did not accept.
func TestPeerKilledAndRestarted(t *testing.T) {
	if os.Getenv(helperEnv) != "" {
		t.Skip()
	}
	dir := t.TempDir()
	peer := issue(t, "restarting-peer")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "cert.pem"), peer.CertPEM, 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "key.pem"), peer.KeyPEM, 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "ca.pem"), pki().CertPEM, 0o600))

	cfg := config(t, "sender")
	// A long idle timeout: recovery must come from the stateless reset of
	// the restarted peer (same key, same address), not from idling out.
	cfg.IdleTimeout = 60 * time.Second
	cfg.SendTimeout = time.Second
	cfg.HandshakeTimeout = 2 * time.Second
	cfg.SendBufferBytes = 2048
	a := endpoint(t, cfg)
	watch := cfg.SendTimeout + 5*time.Second

	first := startHelper(t, dir, "127.0.0.1:0")
	addr := first.addr

	var mu sync.Mutex
	accepted := map[int]bool{}
	var sendErrs []error
	seq := 0
	sendOne := func() error {
		i := seq
		seq++
		err := sendWatch(t, watch, func() error {
			return a.Send(context.Background(), addr, team(5), "kill", payload("kill", i, 256))
		})
		mu.Lock()
		defer mu.Unlock()
		if err == nil {
			accepted[i] = true
		} else {
			require.True(t, isSendFailure(err), "unexpected error class: %v", err)
			sendErrs = append(sendErrs, err)
		}
		return err
	}

	// Transfer until the first peer has received 200 messages, then kill it
	// while the sends go on.
	got1 := 0
	last1 := -1
	collect := func(h *helperPeer, got *int, last *int) {
		for {
			select {
			case m, ok := <-h.msgs:
				if !ok {
					return
				}
				label, s := parsePayload(t, []byte(m))
				require.Equal(t, "kill", label)
				require.Greater(t, s, *last, "duplicate or reordered message within one run")
				mu.Lock()
				require.True(t, accepted[s], "message %d arrived but Send had not accepted it", s)
				mu.Unlock()
				*last = s
				*got++
			default:
				return
			}
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for got1 < 200 {
		require.True(t, time.Now().Before(deadline), "first peer got only %d messages", got1)
		require.NoError(t, sendOne(), "sending to a live peer")
		collect(first, &got1, &last1)
	}
	require.NoError(t, first.cmd.Process.Signal(syscall.SIGKILL))
	_ = first.cmd.Wait()
	collect(first, &got1, &last1)

	// The peer is gone: sends must fail (timeout or connection error) and
	// return, not hang.
	errsBefore := 0
	for len(sendErrs) == errsBefore {
		require.True(t, time.Now().Before(deadline), "no send failed after the peer was killed")
		_ = sendOne()
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("peer killed after %d delivered; first error: %v", got1, sendErrs[0])

	restartAt := time.Now()
	second := startHelper(t, dir, addr.String())
	t.Logf("restarted in %v", time.Since(restartAt))
	require.Equal(t, addr, second.addr)
	got2, last2 := 0, -1
	deadline = time.Now().Add(30 * time.Second)
	for got2 == 0 {
		require.True(t, time.Now().Before(deadline), "nothing delivered to the restarted peer")
		_ = sendOne()
		collect(second, &got2, &last2)
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("first delivery %v after the restart, %d sends", time.Since(restartAt), seq)
	// Now the new connection works: a batch sent to it arrives whole.
	firstNew := seq
	for i := 0; i < 100; i++ {
		require.NoError(t, sendOne(), "sending to the restarted peer")
	}
	want := seq - 1
	for last2 < want {
		select {
		case m, ok := <-second.msgs:
			require.True(t, ok, "restarted peer exited")
			label, s := parsePayload(t, []byte(m))
			require.Equal(t, "kill", label)
			require.Greater(t, s, last2, "duplicate or reordered message after restart")
			if s > firstNew {
				require.Equal(t, last2+1, s, "message lost on the new connection")
			}
			last2 = s
			got2++
		case <-time.After(20 * time.Second):
			t.Fatalf("restarted peer stopped at %d, want %d", last2, want)
		}
	}
	st := a.Stats()
	t.Logf("sender stats: dials=%d lost=%d; %d send errors; restarted peer got %d", st.Dials, st.ConnectionsLost, len(sendErrs), got2)
	require.GreaterOrEqual(t, st.Dials, uint64(2), "the sender re-dialed the restarted peer")
	// The restarted peer shuts down gracefully; then so does the sender.
	require.NoError(t, second.stdin.Close())
	_ = second.cmd.Wait()
	closeAt := time.Now()
	require.NoError(t, a.Close())
	t.Logf("sender closed in %v", time.Since(closeAt))
}
