package core

import (
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/aranya-quic/aranya-quic/core/wire"
)

// identity is what an endpoint proves and what it trusts.
type identity struct {
	cert  tls.Certificate
	roots *x509.CertPool
	pins  map[PeerID]struct{}
}

func loadIdentity(cfg *Config) (*identity, error) {
	cert, err := tls.X509KeyPair(cfg.CertPEM, cfg.KeyPEM)
	if err != nil {
		return nil, fmt.Errorf("%w: certificate/key: %w", ErrInvalidConfig, err)
	}
	roots := x509.NewCertPool()
	if !appendCerts(roots, cfg.CAPEM) {
		return nil, fmt.Errorf("%w: no CA certificate found in CA PEM", ErrInvalidConfig)
	}
	id := &identity{cert: cert, roots: roots}
	if len(cfg.PinnedPeers) > 0 {
		id.pins = make(map[PeerID]struct{}, len(cfg.PinnedPeers))
		for _, p := range cfg.PinnedPeers {
			id.pins[p] = struct{}{}
		}
	}
	return id, nil
}

// appendCerts is x509.CertPool.AppendCertsFromPEM, but it fails on a
// CERTIFICATE block that does not parse instead of skipping it silently.
func appendCerts(pool *x509.CertPool, pemData []byte) bool {
	added := false
	for {
		var block *pem.Block
		block, pemData = pem.Decode(pemData)
		if block == nil {
			return added
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return false
		}
		pool.AddCert(c)
		added = true
	}
}

var errUntrustedPeer = errors.New("peer certificate not trusted")

// verifyPeer checks the peer's chain against our CAs (any key usage, no
// host name: peers are addressed by IP and port, which certificates of a
// peer-to-peer network do not name) and, when pins are set, the leaf's
// fingerprint. Both sides run the same check.
func (id *identity) verifyPeer(rawCerts [][]byte, _ [][]*x509.Certificate) error {
	if len(rawCerts) == 0 {
		return fmt.Errorf("%w: no certificate presented", errUntrustedPeer)
	}
	certs := make([]*x509.Certificate, len(rawCerts))
	for i, raw := range rawCerts {
		c, err := x509.ParseCertificate(raw)
		if err != nil {
			return fmt.Errorf("%w: %w", errUntrustedPeer, err)
		}
		certs[i] = c
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, err := certs[0].Verify(x509.VerifyOptions{
		Roots:         id.roots,
		Intermediates: inter,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return fmt.Errorf("%w: %w", errUntrustedPeer, err)
	}
	if id.pins != nil {
		if _, ok := id.pins[sha256.Sum256(rawCerts[0])]; !ok {
			return fmt.Errorf("%w: fingerprint not pinned", errUntrustedPeer)
		}
	}
	return nil
}

func (id *identity) serverTLS() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{id.cert},
		// RequestClientCert plus our own verification, which refuses an
		// empty chain: the standard check would demand the client-auth key
		// usage, which certificates used in both roles need not carry, and
		// with RequireAnyClientCert a missing certificate is refused before
		// our verifier can count it.
		ClientAuth:            tls.RequestClientCert,
		VerifyPeerCertificate: id.verifyPeer,
		NextProtos:            []string{wire.ALPN},
	}
}

func (id *identity) clientTLS() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{id.cert},
		// The standard verification checks a host name; verifyPeer does the
		// chain and pin checks that apply to peers addressed by IP.
		InsecureSkipVerify:    true,
		VerifyPeerCertificate: id.verifyPeer,
		NextProtos:            []string{wire.ALPN},
		ServerName:            "aranya-quic-peer",
	}
}

// deriveResetKey derives the stateless reset key from the private key, so
// the same identity restarted on the same address recognizes and resets the
// connections its previous run had, and its peers notice within a round
// trip instead of an idle timeout.
func deriveResetKey(keyPEM []byte) ([32]byte, error) {
	var out [32]byte
	secret := sha256.Sum256(keyPEM)
	k, err := hkdf.Key(sha256.New, secret[:], nil, "aranya-quic/1 stateless reset", 32)
	if err != nil {
		return out, err
	}
	copy(out[:], k)
	return out, nil
}
