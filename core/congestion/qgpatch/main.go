// Command qgpatch attaches aranya-quic's congestion-control hook to
// quic-go without committing any quic-go source. It copies the quic-go
// module that the Go module proxy served into the module cache to an
// output folder, applies a few mechanical rewrites that route the
// congestion controller's construction through a hook, adds two files of
// ours that expose the hook, and writes a go.work that replaces quic-go
// with the patched copy:
//
//	go run ./core/congestion/qgpatch -out build/quicgo
//	GOWORK=$PWD/build/quicgo/go.work go build -tags aranya_cc ./capi
//
// Every rewrite states how often its pattern must occur; if quic-go's code
// no longer matches, the tool fails and names the pattern, rather than
// building something that silently lacks the hook. A stamp next to the copy
// records a digest of the quic-go version, the rewrites and the overlays,
// so that a change to any of them makes a fresh copy.
package main

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

const module = "github.com/quic-go/quic-go"

//go:embed overlay/*.tmpl
var overlay embed.FS

// rewrite replaces old with new in file, which must contain old exactly
// count times.
type rewrite struct {
	file     string
	old, new string
	count    int
}

var rewrites = []rewrite{
	{
		// Both connection constructors (client and server) pass the
		// connection's addresses so the hook can choose per endpoint.
		file:  "connection.go",
		old:   "ackhandler.NewSentPacketHandler(\n",
		new:   "ackhandler.NewSentPacketHandlerForPath(s.conn.LocalAddr(), s.conn.RemoteAddr(),\n",
		count: 2,
	},
	{
		file:  "internal/ackhandler/sent_packet_handler.go",
		old:   "\tcongestion congestion.SendAlgorithmWithDebugInfos\n",
		new:   "\tcongestion congestion.SendAlgorithmWithDebugInfos\n\taranyaNewCongestion func(protocol.ByteCount) congestion.SendAlgorithmWithDebugInfos\n",
		count: 1,
	},
	{
		// After a path migration upstream builds a new NewReno sender;
		// build ours again instead.
		file:  "internal/ackhandler/sent_packet_handler.go",
		old:   "\th.qlogRecoveryParametersSet(true)\n\th.setLossDetectionTimer(now)\n",
		new:   "\th.aranyaResetCongestion(initialMaxDatagramSize)\n\th.qlogRecoveryParametersSet(true)\n\th.setLossDetectionTimer(now)\n",
		count: 1,
	},
	{
		// The constructors the rewrites above wrap must still exist with
		// the shape the overlay calls.
		file:  "internal/ackhandler/sent_packet_handler.go",
		old:   "func NewSentPacketHandler(\n\tinitialPN protocol.PacketNumber,\n\tinitialMaxDatagramSize protocol.ByteCount,\n\trttStats *utils.RTTStats,\n\tconnStats *utils.ConnectionStats,\n\tclientAddressValidated bool,\n\tenableECN bool,\n\tignorePacketsBelow func(protocol.PacketNumber),\n\tpers protocol.Perspective,\n\tqlogger qlogwriter.Recorder,\n\tlogger utils.Logger,\n) SentPacketHandler {\n",
		new:   "func NewSentPacketHandler(\n\tinitialPN protocol.PacketNumber,\n\tinitialMaxDatagramSize protocol.ByteCount,\n\trttStats *utils.RTTStats,\n\tconnStats *utils.ConnectionStats,\n\tclientAddressValidated bool,\n\tenableECN bool,\n\tignorePacketsBelow func(protocol.PacketNumber),\n\tpers protocol.Perspective,\n\tqlogger qlogwriter.Recorder,\n\tlogger utils.Logger,\n) SentPacketHandler {\n",
		count: 1,
	},
}

// overlays maps embedded templates to their place in the module.
var overlays = map[string]string{
	"overlay/aranya_congestion.go.tmpl": "aranya_congestion.go",
	"overlay/ackhandler_aranya.go.tmpl": "internal/ackhandler/aranya_congestion.go",
}

// recipe is everything a patched copy is made from besides quic-go
// itself: the rewrites, and the overlay files with their places.
type recipe struct {
	rewrites []rewrite
	files    fs.FS
	overlays map[string]string // file in files -> place in the module
}

var shipped = recipe{rewrites: rewrites, files: overlay, overlays: overlays}

// digest identifies what a copy patched with r from quic-go version is
// made of: the stamp compares it, so that a changed rewrite or overlay is
// applied again, not only a new quic-go version.
func (r recipe) digest(version string) (string, error) {
	h := sha256.New()
	field := func(s string) { fmt.Fprintf(h, "%d:%s;", len(s), s) }
	field("qgpatch recipe 2")
	field(version)
	for _, rw := range r.rewrites {
		field(rw.file)
		field(rw.old)
		field(rw.new)
		field(strconv.Itoa(rw.count))
	}
	names := make([]string, 0, len(r.overlays))
	for name := range r.overlays {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		b, err := fs.ReadFile(r.files, name)
		if err != nil {
			return "", err
		}
		field(name)
		field(r.overlays[name])
		field(string(b))
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func main() {
	out := flag.String("out", "build/quicgo", "output folder for the patched module and go.work")
	repo := flag.String("repo", ".", "the aranya-quic repository (its go.mod names the quic-go version)")
	flag.Parse()
	if err := run(*repo, *out); err != nil {
		fmt.Fprintln(os.Stderr, "qgpatch:", err)
		os.Exit(1)
	}
}

func run(repo, out string) error {
	repoAbs, err := filepath.Abs(repo)
	if err != nil {
		return err
	}
	outAbs, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	src, version, err := moduleDir(repoAbs)
	if err != nil {
		return err
	}
	if _, err := patch(src, outAbs, version, shipped); err != nil {
		return err
	}
	return writeWork(repoAbs, outAbs, version)
}

// patch makes out/quic-go, a copy of the module at src patched with r,
// unless the copy there was made from the same version and recipe; it
// reports whether it patched.
func patch(src, out, version string, r recipe) (bool, error) {
	want, err := r.digest(version)
	if err != nil {
		return false, err
	}
	dst := filepath.Join(out, "quic-go")
	stamp := filepath.Join(out, "patched-version")
	if b, err := os.ReadFile(stamp); err == nil && string(b) == want+"\n" {
		return false, nil
	}
	// The stamp goes first: a copy left half made by a failure must not
	// pass for a finished one.
	if err := os.Remove(stamp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	if err := os.RemoveAll(dst); err != nil {
		return false, err
	}
	if err := copyTree(src, dst); err != nil {
		return false, fmt.Errorf("copy %s: %w", src, err)
	}
	for _, rw := range r.rewrites {
		if err := apply(dst, rw); err != nil {
			return false, fmt.Errorf("quic-go %s no longer matches what the patch expects: %w", version, err)
		}
	}
	for name, rel := range r.overlays {
		b, err := fs.ReadFile(r.files, name)
		if err != nil {
			return false, err
		}
		target := filepath.Join(dst, rel)
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return false, err
		}
		if err := os.WriteFile(target, b, 0o644); err != nil {
			return false, err
		}
	}
	return true, os.WriteFile(stamp, []byte(want+"\n"), 0o644)
}

// moduleDir asks the go command where the module cache holds the quic-go
// version that the repository's go.mod requires, downloading it if needed.
func moduleDir(repo string) (dir, version string, err error) {
	cmd := exec.Command("go", "mod", "download", "-json", module)
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "GOWORK=off")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		return "", "", fmt.Errorf("go mod download %s: %w: %s", module, err, stderr.String())
	}
	var info struct{ Dir, Version, Error string }
	if err := json.Unmarshal(b, &info); err != nil {
		return "", "", fmt.Errorf("go mod download output: %w", err)
	}
	if info.Error != "" || info.Dir == "" {
		return "", "", fmt.Errorf("go mod download %s: %s", module, info.Error)
	}
	return info.Dir, info.Version, nil
}

func apply(root string, rw rewrite) error {
	path := filepath.Join(root, rw.file)
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if n := strings.Count(string(b), rw.old); n != rw.count {
		return fmt.Errorf("%s: expected %d occurrence(s) of %q, found %d", rw.file, rw.count, firstLine(rw.old), n)
	}
	return os.WriteFile(path, []byte(strings.ReplaceAll(string(b), rw.old, rw.new)), 0o644)
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 && i < len(s)-1 {
		return s[:i] + " ..."
	}
	return strings.TrimSuffix(s, "\n")
}

// writeWork writes the workspace that builds the repository against the
// patched copy.
func writeWork(repo, out, version string) error {
	rel, err := filepath.Rel(out, repo)
	if err != nil {
		return err
	}
	work := fmt.Sprintf("go 1.26.0\n\nuse %s\n\nreplace %s %s => ./quic-go\n", filepath.ToSlash(rel), module, version)
	return os.WriteFile(filepath.Join(out, "go.work"), []byte(work), 0o644)
}

// copyTree copies the module, leaving out its tests and test data: the
// module cache is read-only and the copy only needs to build.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if strings.HasSuffix(path, "_test.go") {
			return nil
		}
		if !d.Type().IsRegular() {
			return errors.New("unexpected non-regular file " + rel)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
}
