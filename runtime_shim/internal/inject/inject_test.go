package inject

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sconify/runtime_shim/internal/fatal"
	"sconify/runtime_shim/internal/rootfs"
	"sconify/runtime_shim/internal/session"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	root, err := rootfs.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "etc", "old"), []byte("a much longer old content"), 0o644); err != nil {
		t.Fatal(err)
	}
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	err = Write(root, []session.InjectionFile{
		{Path: "/etc/new/deep/key.pem", ContentB64: b64("KEY"), Mode: 0o600},
		{Path: "/etc/old", ContentB64: b64("new"), Mode: 0o640},
		{Path: "/etc/empty", ContentB64: "", Mode: 0o644},
	})
	if err != nil {
		t.Fatal(err)
	}
	for rel, want := range map[string]struct {
		content string
		mode    os.FileMode
	}{"etc/new/deep/key.pem": {"KEY", 0o600}, "etc/old": {"new", 0o640}, "etc/empty": {"", 0o644}} {
		p := filepath.Join(dir, rel)
		got, err := os.ReadFile(p)
		st, _ := os.Stat(p)
		if err != nil || string(got) != want.content || st.Mode() != want.mode {
			t.Errorf("%s: %q %v %v", rel, got, st.Mode(), err)
		}
	}
}

func TestWriteRefusesSymlink(t *testing.T) {
	dir := t.TempDir()
	root, _ := rootfs.New(dir)
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	err := Write(root, []session.InjectionFile{{Path: "/link", ContentB64: "eA==", Mode: 0o600}})
	if err == nil || !strings.HasPrefix(fatal.Line(err), "[SCONIFY|FATAL] writing injection file /link: ") {
		t.Fatalf("got %v", err)
	}
	if got, _ := os.ReadFile(victim); string(got) != "keep" {
		t.Fatal("wrote through the symlink")
	}
}
