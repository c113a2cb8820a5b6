package core

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aranya-quic/aranya-quic/core/wire"
)

// identity is what an endpoint proves and what it trusts. Both can be
// replaced while the endpoint runs; each handshake reads the current ones.
type identity struct {
	cert  atomic.Pointer[tls.Certificate]
	trust atomic.Pointer[trustSet]
}

// trustSet is one generation of trusted CAs and pins.
type trustSet struct {
	roots *x509.CertPool
	pins  map[PeerID]struct{} // nil: no pinning
}

func loadIdentity(cfg *Config) (*identity, error) {
	cert, err := loadCertificate(cfg.CertPEM, cfg.KeyPEM, time.Now())
	if err != nil {
		return nil, err
	}
	trust, err := loadTrust(cfg.CAPEM, cfg.PinnedPeers)
	if err != nil {
		return nil, err
	}
	id := &identity{}
	id.cert.Store(cert)
	id.trust.Store(trust)
	return id, nil
}

// loadCertificate parses a certificate chain and its key and checks that
// the leaf is valid now.
func loadCertificate(certPEM, keyPEM []byte, now time.Time) (*tls.Certificate, error) {
	if len(certPEM) == 0 || len(keyPEM) == 0 {
		return nil, fmt.Errorf("%w: certificate and key are required", ErrInvalidConfig)
	}
	if err := checkKeyNotEncrypted(keyPEM); err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%w: certificate/key: %w", ErrInvalidConfig, err)
	}
	if err := checkOwnValidity(cert, now); err != nil {
		return nil, err
	}
	return &cert, nil
}

// loadTrust parses the CA certificates and pins of one trust set.
func loadTrust(caPEM []byte, pins []PeerID) (*trustSet, error) {
	if len(caPEM) == 0 {
		return nil, fmt.Errorf("%w: at least one trusted CA certificate is required", ErrInvalidConfig)
	}
	roots := x509.NewCertPool()
	if err := appendCerts(roots, caPEM); err != nil {
		return nil, err
	}
	t := &trustSet{roots: roots}
	if len(pins) > 0 {
		t.pins = make(map[PeerID]struct{}, len(pins))
		for _, p := range pins {
			t.pins[p] = struct{}{}
		}
	}
	return t, nil
}

// checkKeyNotEncrypted gives an encrypted key its own error: crypto/tls
// cannot decrypt keys and reports only "failed to parse private key",
// which sends users looking for a corrupt file.
func checkKeyNotEncrypted(keyPEM []byte) error {
	for rest := keyPEM; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil
		}
		if b.Type == "ENCRYPTED PRIVATE KEY" || strings.Contains(b.Headers["Proc-Type"], "ENCRYPTED") {
			return fmt.Errorf("%w: encrypted private keys are not supported: decrypt the key first (e.g. openssl pkey -in key.pem -out plain.pem)", ErrInvalidConfig)
		}
	}
}

// checkOwnValidity fails at startup on a certificate outside its validity
// period: every peer would reject it, and the handshake failures would
// otherwise point at the peers rather than at this endpoint.
func checkOwnValidity(cert tls.Certificate, now time.Time) error {
	leaf := cert.Leaf
	if leaf == nil {
		var err error
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return fmt.Errorf("%w: certificate: %w", ErrInvalidConfig, err)
		}
	}
	name := leaf.Subject.String()
	if name == "" {
		name = fmt.Sprintf("serial %x", leaf.SerialNumber)
	}
	switch {
	case now.After(leaf.NotAfter):
		return fmt.Errorf("%w: this endpoint's own certificate (%s) expired at %s; peers would reject it",
			ErrInvalidConfig, name, leaf.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(leaf.NotBefore):
		return fmt.Errorf("%w: this endpoint's own certificate (%s) is not valid until %s; peers would reject it",
			ErrInvalidConfig, name, leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	return nil
}

var (
	pemBeginLine = []byte("-----BEGIN ")
	pemEndLine   = []byte("-----END ")
)

// appendCerts adds every certificate of a CA PEM to pool. Unlike
// x509.CertPool.AppendCertsFromPEM (and pem.Decode, which skips a block
// it cannot decode and returns the next one) it fails on anything that
// looks like a damaged block: a CA silently dropped from the trust list
// shows up much later as peers that cannot connect, far from the cause.
// Text before and between blocks is allowed, as in the bundles that label
// each certificate; text after the last block is not, since that is where
// a truncated or mangled block ends up.
func appendCerts(pool *x509.CertPool, pemData []byte) error {
	// A C caller may count the terminating NUL in the length.
	rest := bytes.TrimRight(pemData, "\x00")
	n := 0
	for {
		i := bytes.Index(rest, pemBeginLine)
		if i < 0 {
			break
		}
		if bytes.Contains(rest[:i], pemEndLine) {
			if n == 0 {
				return fmt.Errorf("%w: CA PEM: END line without a BEGIN line before block 1", ErrInvalidConfig)
			}
			return fmt.Errorf("%w: CA PEM: END line without a BEGIN line after block %d", ErrInvalidConfig, n)
		}
		rest = rest[i:]
		n++
		// Decode exactly this block: the text up to the end of its END line.
		j := bytes.Index(rest, pemEndLine)
		if j < 0 {
			return fmt.Errorf("%w: CA PEM block %d: no END line", ErrInvalidConfig, n)
		}
		end := len(rest)
		if k := bytes.IndexByte(rest[j:], '\n'); k >= 0 {
			end = j + k + 1
		}
		seg := rest[:end]
		rest = rest[end:]
		if bytes.Count(seg, pemBeginLine) != 1 {
			return fmt.Errorf("%w: CA PEM block %d: no END line before the next BEGIN line", ErrInvalidConfig, n)
		}
		block, tail := pem.Decode(seg)
		if block == nil || len(bytes.TrimSpace(tail)) != 0 {
			return fmt.Errorf("%w: CA PEM block %d: does not decode (corrupt base64, or BEGIN and END lines that do not match)", ErrInvalidConfig, n)
		}
		if block.Type != "CERTIFICATE" {
			return fmt.Errorf("%w: CA PEM block %d: type %q, want CERTIFICATE", ErrInvalidConfig, n, block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return fmt.Errorf("%w: CA PEM block %d: %w", ErrInvalidConfig, n, err)
		}
		pool.AddCert(c)
	}
	if n == 0 {
		return fmt.Errorf("%w: no CA certificate found in CA PEM", ErrInvalidConfig)
	}
	if trailing := bytes.TrimSpace(rest); len(trailing) > 0 {
		line, _, _ := bytes.Cut(trailing, []byte("\n"))
		if len(line) > 40 {
			line = line[:40]
		}
		if bytes.Contains(trailing, pemEndLine) {
			return fmt.Errorf("%w: CA PEM: text after block %d is not a PEM block (an END line without a BEGIN line): %q", ErrInvalidConfig, n, line)
		}
		return fmt.Errorf("%w: CA PEM: text after block %d is not a PEM block: %q", ErrInvalidConfig, n, line)
	}
	return nil
}

var errUntrustedPeer = errors.New("peer certificate not trusted")

// verifyPeer checks the peer's chain against our CAs (any key usage, no
// host name: peers are addressed by IP and port, which certificates of a
// peer-to-peer network do not name) and, when pins are set, the leaf's
// fingerprint. Both sides run the same check, with the trust set current
// at the handshake.
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
	return id.trust.Load().verify(certs, time.Now())
}

// verify checks a peer's chain (leaf first) against the set.
func (t *trustSet) verify(certs []*x509.Certificate, now time.Time) error {
	if len(certs) == 0 {
		return fmt.Errorf("%w: no certificate presented", errUntrustedPeer)
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, err := certs[0].Verify(x509.VerifyOptions{
		Roots:         t.roots,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return fmt.Errorf("%w: %w", errUntrustedPeer, err)
	}
	if t.pins != nil {
		if _, ok := t.pins[sha256.Sum256(certs[0].Raw)]; !ok {
			return fmt.Errorf("%w: fingerprint not pinned", errUntrustedPeer)
		}
	}
	return nil
}

func (id *identity) serverTLS() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		// Read at each handshake, so a new identity applies to the next
		// one without touching the listener.
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return id.cert.Load(), nil },
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
		MinVersion: tls.VersionTLS13,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return id.cert.Load(), nil
		},
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
