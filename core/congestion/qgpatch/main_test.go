package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

// fakeModule writes a module tree with the given files and returns its
// folder.
func fakeModule(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for rel, body := range files {
		path := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func testRecipe(overlayBody string) recipe {
	return recipe{
		rewrites: []rewrite{{file: "conn.go", old: "newHandler(", new: "newHandlerForPath(a, b, ", count: 2}},
		files:    fstest.MapFS{"hook.tmpl": {Data: []byte(overlayBody)}},
		overlays: map[string]string{"hook.tmpl": "internal/hook.go"},
	}
}

func TestPatchAppliesRewritesAndOverlays(t *testing.T) {
	src := fakeModule(t, map[string]string{"conn.go": "x := newHandler(1)\ny := newHandler(2)\n", "conn_test.go": "test"})
	out := t.TempDir()
	patched, err := patch(src, out, "v1.0.0", testRecipe("package internal // v1\n"))
	if err != nil || !patched {
		t.Fatalf("patch: %v, patched %v", err, patched)
	}
	if got := read(t, filepath.Join(out, "quic-go", "conn.go")); got != "x := newHandlerForPath(a, b, 1)\ny := newHandlerForPath(a, b, 2)\n" {
		t.Fatalf("rewritten conn.go: %q", got)
	}
	if got := read(t, filepath.Join(out, "quic-go", "internal", "hook.go")); got != "package internal // v1\n" {
		t.Fatalf("overlay: %q", got)
	}
	if _, err := os.Stat(filepath.Join(out, "quic-go", "conn_test.go")); !os.IsNotExist(err) {
		t.Fatal("tests of the module were copied")
	}
}

func TestRewriteThatNoLongerMatchesFailsLoudly(t *testing.T) {
	for name, body := range map[string]string{
		"pattern gone":        "x := buildHandler(1)\n",
		"pattern once":        "x := newHandler(1)\n",
		"pattern three times": "newHandler(1)\nnewHandler(2)\nnewHandler(3)\n",
	} {
		src := fakeModule(t, map[string]string{"conn.go": body})
		out := t.TempDir()
		patched, err := patch(src, out, "v1.1.0", testRecipe("package internal\n"))
		if err == nil || patched {
			t.Fatalf("%s: patch succeeded", name)
		}
		for _, want := range []string{"v1.1.0", "conn.go", "expected 2 occurrence(s)", `"newHandler("`} {
			if !strings.Contains(err.Error(), want) {
				t.Fatalf("%s: error %q does not name %s", name, err, want)
			}
		}
		if _, err := os.Stat(filepath.Join(out, "patched-version")); !os.IsNotExist(err) {
			t.Fatalf("%s: a failed patch left a stamp", name)
		}
	}
}

func TestChangedRecipeIsAppliedAgain(t *testing.T) {
	src := fakeModule(t, map[string]string{"conn.go": "newHandler(1)\nnewHandler(2)\n"})
	out := t.TempDir()
	hook := filepath.Join(out, "quic-go", "internal", "hook.go")
	mustPatch := func(r recipe, version string, want bool) {
		t.Helper()
		patched, err := patch(src, out, version, r)
		if err != nil {
			t.Fatal(err)
		}
		if patched != want {
			t.Fatalf("patched %v, want %v", patched, want)
		}
	}
	mustPatch(testRecipe("package internal // v1\n"), "v1.0.0", true)
	mustPatch(testRecipe("package internal // v1\n"), "v1.0.0", false) // nothing changed: kept
	mustPatch(testRecipe("package internal // v2\n"), "v1.0.0", true)  // a changed overlay
	if got := read(t, hook); got != "package internal // v2\n" {
		t.Fatalf("the changed overlay was not applied: %q", got)
	}
	r := testRecipe("package internal // v2\n")
	r.rewrites[0].new = "newHandlerWith(c, "
	mustPatch(r, "v1.0.0", true) // a changed rewrite
	if got := read(t, filepath.Join(out, "quic-go", "conn.go")); got != "newHandlerWith(c, 1)\nnewHandlerWith(c, 2)\n" {
		t.Fatalf("the changed rewrite was not applied: %q", got)
	}
	mustPatch(r, "v1.0.1", true) // a new quic-go version
}

func TestShippedRecipeDigestCoversItsOverlays(t *testing.T) {
	d1, err := shipped.digest("v0.65.0")
	if err != nil {
		t.Fatal(err)
	}
	changed := shipped
	changed.files = fstest.MapFS{}
	for name := range shipped.overlays {
		b, err := overlay.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		changed.files.(fstest.MapFS)[name] = &fstest.MapFile{Data: append(b, '\n')}
	}
	d2, err := changed.digest("v0.65.0")
	if err != nil {
		t.Fatal(err)
	}
	if d1 == d2 {
		t.Fatal("changing the overlays left the digest unchanged")
	}
}
