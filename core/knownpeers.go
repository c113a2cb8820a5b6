package core

import (
	"crypto/x509"
	"sync"
)

// MaxKnownPeers bounds the peers an endpoint remembers after their
// connections ended, for SetTrust to revoke.
const MaxKnownPeers = 4096

// knownPeers remembers the certificate chains of the peers that got in
// recently, so that SetTrust can name every trusted peer a new trust set
// revokes, also one whose connections are gone while its messages still
// wait in the receive queue, or in a binding's buffer.
type knownPeers struct {
	mu    sync.Mutex
	clock uint64
	peers map[PeerID]*knownPeer
}

type knownPeer struct {
	certs []*x509.Certificate
	used  uint64
}

func newKnownPeers() *knownPeers {
	return &knownPeers{peers: make(map[PeerID]*knownPeer)}
}

// add records a peer that was admitted, forgetting the least recently
// admitted one beyond the bound.
func (k *knownPeers) add(id PeerID, certs []*x509.Certificate) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.clock++
	if p := k.peers[id]; p != nil {
		p.certs, p.used = certs, k.clock
		return
	}
	if len(k.peers) >= MaxKnownPeers {
		var oldest PeerID
		first := true
		for pid, p := range k.peers {
			if first || p.used < k.peers[oldest].used {
				oldest, first = pid, false
			}
		}
		delete(k.peers, oldest)
	}
	k.peers[id] = &knownPeer{certs: certs, used: k.clock}
}

// failing removes and returns the peers whose chains fail check.
func (k *knownPeers) failing(check func([]*x509.Certificate) error) []PeerID {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []PeerID
	for id, p := range k.peers {
		if check(p.certs) != nil {
			out = append(out, id)
			delete(k.peers, id)
		}
	}
	return out
}
