// Command certgen writes a throwaway CA and peer certificates as PEM files,
// so the examples, the demo and the tests of every language run with no
// set-up:
//
//	go run ./examples/certgen -out build/certs alice bob
//
// writes ca.pem (the CA certificate) and, for each name, NAME.crt and
// NAME.key. Add -other-ca to also write a second, untrusted CA and one
// certificate from it (stranger.crt / stranger.key, other-ca.pem) for
// rejection tests.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/aranya-quic/aranya-quic/core/certgen"
)

func main() {
	out := flag.String("out", "certs", "directory to write the PEM files to")
	otherCA := flag.Bool("other-ca", false, "also write an untrusted CA and a certificate from it (stranger)")
	flag.Parse()
	names := flag.Args()
	if len(names) == 0 {
		names = []string{"alice", "bob"}
	}
	if err := run(*out, names, *otherCA); err != nil {
		fmt.Fprintln(os.Stderr, "certgen:", err)
		os.Exit(1)
	}
}

func run(out string, names []string, otherCA bool) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	ca, err := certgen.NewCA("aranya-quic throwaway CA")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "ca.pem"), ca.CertPEM, 0o644); err != nil {
		return err
	}
	for _, name := range names {
		if err := writePeer(out, name, ca); err != nil {
			return err
		}
	}
	if otherCA {
		other, err := certgen.NewCA("untrusted CA")
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(out, "other-ca.pem"), other.CertPEM, 0o644); err != nil {
			return err
		}
		if err := writePeer(out, "stranger", other); err != nil {
			return err
		}
	}
	return nil
}

func writePeer(out, name string, ca *certgen.CA) error {
	p, err := ca.Issue(name, certgen.PeerOptions{})
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, name+".crt"), p.CertPEM, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(out, name+".key"), p.KeyPEM, 0o600)
}
