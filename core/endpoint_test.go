package core

import (
	"crypto/sha256"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSendReceiveChannelAndSync(t *testing.T) {
	a := newTestEndpoint(t, "alice")
	b := newTestEndpoint(t, "bob")
	ctx := sendCtx(t)

	require.NoError(t, a.Send(ctx, b.LocalAddr(), team(1), "chat", []byte("hello bob")))
	require.NoError(t, a.SendSync(ctx, b.LocalAddr(), 7, []byte("sync payload")))

	got := recvN(t, b, 2, 5*time.Second)
	byKind := map[Kind]received{}
	for _, r := range got {
		byKind[r.ch.Kind] = r
	}
	chMsg := byKind[KindChannel]
	require.Equal(t, "hello bob", string(chMsg.msg))
	require.Equal(t, "chat", chMsg.ch.Label)
	require.Equal(t, team(1), chMsg.ch.TeamID)
	require.Equal(t, a.LocalAddr(), chMsg.ch.Addr, "peer address is the sender's listening address")
	require.Equal(t, sha256.Sum256(a.id.cert.Load().Certificate[0]), chMsg.ch.PeerID)

	syncMsg := byKind[KindSync]
	require.Equal(t, "sync payload", string(syncMsg.msg))
	require.Equal(t, uint32(7), syncMsg.ch.SyncType)
	require.Empty(t, syncMsg.ch.Label)
}
