package core

import (
	"bytes"
	"crypto/rand"
	"encoding/pem"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aranya-quic/aranya-quic/core/certgen"
)

// corruptBase64 puts a character outside the base64 alphabet in the middle
// of the first PEM block's body, so pem.Decode cannot decode it.
func corruptBase64(t *testing.T, p []byte) []byte {
	t.Helper()
	out := bytes.Clone(p)
	start := bytes.IndexByte(out, '\n') + 1
	end := bytes.Index(out, []byte("\n-----END"))
	require.Less(t, start, end)
	out[(start+end)/2] = '!'
	return out
}

func TestCAPEMStrict(t *testing.T) {
	ca1 := testPKI()
	ca2, err := certgen.NewCA("second CA")
	require.NoError(t, err)
	ca3, err := certgen.NewCA("third CA")
	require.NoError(t, err)
	peer2, err := ca2.Issue("bob", certgen.PeerOptions{})
	require.NoError(t, err)
	a, b, c := ca1.CertPEM, ca2.CertPEM, ca3.CertPEM
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	notACert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("not DER")})

	cases := []struct {
		name string
		ca   []byte
		bad  string // substring of the error; "" means accepted
	}{
		{"two valid", cat(a, b), ""},
		{"text before and between blocks", cat([]byte("# bundle\nFirst CA\n"), a, []byte("\nSecond CA\n=========\n"), b), ""},
		{"trailing whitespace", cat(a, b, []byte("\n\r\n\t \n")), ""},
		{"trailing NUL from a C caller", cat(a, b, []byte{0}), ""},
		{"CRLF line endings", bytes.ReplaceAll(cat(a, b), []byte("\n"), []byte("\r\n")), ""},

		{"second block corrupt base64", cat(a, corruptBase64(t, b)), "CA PEM block 2: "},
		{"second block corrupt then a valid third", cat(a, corruptBase64(t, b), c), "CA PEM block 2: "},
		{"first block corrupt", cat(corruptBase64(t, a), b), "CA PEM block 1: "},
		{"trailing garbage", cat(a, b, []byte("garbage\n")), "after block 2"},
		{"second block without END line", cat(a, b[:bytes.Index(b, []byte("-----END"))]), "CA PEM block 2: "},
		{"END line without BEGIN", cat(a, b[bytes.IndexByte(b, '\n')+1:], c), "after block 1"},
		{"END type differs from BEGIN", cat(a, bytes.Replace(b, []byte("END CERTIFICATE"), []byte("END X509 CRL"), 1)), "CA PEM block 2: "},
		{"second certificate does not parse", cat(a, notACert), "CA PEM block 2: "},
		{"private key in the CA PEM", cat(a, peer2.KeyPEM), `CA PEM block 2: type "PRIVATE KEY"`},
		{"empty", nil, "at least one trusted CA certificate is required"},
		{"whitespace only", []byte("\n \n"), "no CA certificate"},
		{"text only", []byte("hello\n"), "no CA certificate"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := peerConfig(t, "alice")
			cfg.CAPEM = tc.ca
			id, err := loadIdentity(&cfg)
			if tc.bad == "" {
				require.NoError(t, err)
				// Both CAs are trusted, not only the first.
				require.NoError(t, id.verifyPeer([][]byte{peer2.Cert.Raw}, nil))
				return
			}
			require.ErrorIs(t, err, ErrInvalidConfig)
			require.Contains(t, err.Error(), tc.bad)
		})
	}
}

func TestOwnCertificateValidity(t *testing.T) {
	now := time.Now()
	cases := []struct {
		name string
		opts certgen.PeerOptions
		bad  string // substring of the error; "" means accepted
	}{
		{"valid", certgen.PeerOptions{NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}, ""},
		{"expired", certgen.PeerOptions{NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-time.Hour)},
			"this endpoint's own certificate (CN=alice) expired at " + now.Add(-time.Hour).UTC().Format(time.RFC3339)},
		{"not yet valid", certgen.PeerOptions{NotBefore: now.Add(time.Hour), NotAfter: now.Add(48 * time.Hour)},
			"this endpoint's own certificate (CN=alice) is not valid until " + now.Add(time.Hour).UTC().Format(time.RFC3339)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := testPKI().Issue("alice", tc.opts)
			require.NoError(t, err)
			cfg := peerConfig(t, "alice")
			cfg.CertPEM, cfg.KeyPEM = p.CertPEM, p.KeyPEM
			e, err := NewEndpoint(cfg)
			if e != nil {
				e.Close()
			}
			if tc.bad == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrInvalidConfig)
			require.Contains(t, err.Error(), tc.bad)
			require.Contains(t, err.Error(), "peers would reject it")
		})
	}
}

func TestEncryptedKeyRefused(t *testing.T) {
	junk := make([]byte, 121)
	_, err := rand.Read(junk)
	require.NoError(t, err)
	legacy := func(typ string) []byte {
		return pem.EncodeToMemory(&pem.Block{Type: typ, Headers: map[string]string{
			"Proc-Type": "4,ENCRYPTED",
			"DEK-Info":  "AES-256-CBC,00112233445566778899AABBCCDDEEFF",
		}, Bytes: junk})
	}
	cases := []struct {
		name string
		key  []byte
	}{
		{"PKCS#8 ENCRYPTED PRIVATE KEY", pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: junk})},
		{"legacy EC PRIVATE KEY with Proc-Type", legacy("EC PRIVATE KEY")},
		{"legacy RSA PRIVATE KEY with Proc-Type", legacy("RSA PRIVATE KEY")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := peerConfig(t, "alice")
			cfg.KeyPEM = tc.key
			_, err := NewEndpoint(cfg)
			require.ErrorIs(t, err, ErrInvalidConfig)
			require.Contains(t, err.Error(), "encrypted private keys are not supported: decrypt the key first (e.g. openssl pkey -in key.pem -out plain.pem)")
		})
	}
}
