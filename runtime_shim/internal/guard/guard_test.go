package guard

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"sconify/runtime_shim/internal/canon"
	"sconify/runtime_shim/internal/testkit"
)

func TestInterpreter(t *testing.T) {
	if got, err := Interpreter("/bin/sh"); err != nil || !strings.HasPrefix(filepath.Base(got), "ld-linux-") {
		t.Errorf("/bin/sh: %q %v", got, err)
	}
	// Debian's ldconfig is static-pie: no PT_INTERP.
	if got, err := Interpreter("/sbin/ldconfig"); err != nil || got != "" {
		t.Errorf("/sbin/ldconfig: %q %v", got, err)
	}
	text := filepath.Join(t.TempDir(), "script")
	testkit.WriteFile(t, text, []byte("#!/bin/sh\n"), 0o755)
	if _, err := Interpreter(text); !errors.Is(err, ErrNotELF) {
		t.Error("a script is not an ELF binary")
	}
	if !IsMusl("/lib/ld-musl-x86_64.so.1") || IsMusl("/lib64/ld-linux-x86-64.so.2") {
		t.Error("IsMusl")
	}
}

func TestEnvironment(t *testing.T) {
	got := Environment([]string{"A=1", "LD_PRELOAD=/opt/x.so", "SCONIFY_GUARD=2:x:/y", "Z=2"}, "/g.so", 1, "ab", "/m.json")
	want := []string{"A=1", "LD_PRELOAD=/g.so:/opt/x.so", "SCONIFY_GUARD=1:ab:/m.json", "Z=2"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q", got)
	}
	got = Environment([]string{"LD_PRELOAD="}, "/g.so", 0, "ab", "/m.json")
	if !reflect.DeepEqual(got, []string{"LD_PRELOAD=/g.so", "SCONIFY_GUARD=0:ab:/m.json"}) {
		t.Errorf("got %q", got)
	}
}

// lab is the C guard built from runtime_shim/guard with gcc, and a manifest listing Python's
// _ctypes extension (so that `import ctypes` is allowed under policy 1) and nothing else.
type lab struct {
	t        *testing.T
	lib      string
	manifest string
	sum      string
	ctypes   string
}

const python = "/usr/bin/python3"

func newLab(t *testing.T) *lab {
	dir := t.TempDir()
	l := &lab{t: t, lib: filepath.Join(dir, "guard.so"), manifest: filepath.Join(dir, "manifest.json")}
	src := filepath.Join(testkit.RepoRoot(t), "runtime_shim/guard")
	build := exec.Command("gcc", "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-Wno-format-truncation", "-O2",
		"-fPIC", "-shared", "-fvisibility=hidden", "-o", l.lib,
		filepath.Join(src, "guard.c"), filepath.Join(src, "sha256.c"), "-ldl")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the guard: %v\n%s", err, out)
	}
	out, err := exec.Command(python, "-c", "import _ctypes; print(_ctypes.__file__)").Output()
	if err != nil {
		t.Fatalf("%s: %v", python, err)
	}
	l.ctypes = strings.TrimSpace(string(out))
	l.writeManifest(canon.Object{l.ctypes: fileSum(t, l.ctypes), "/a\"b\\c:d": strings.Repeat("0", 64)})
	return l
}

func (l *lab) writeManifest(files canon.Object) {
	raw := canon.Marshal(canon.Object{"files": files, "version": 1})
	testkit.WriteFile(l.t, l.manifest, raw, 0o644)
	s := sha256.Sum256(raw)
	l.sum = hex.EncodeToString(s[:])
}

func fileSum(t *testing.T, p string) string {
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(raw)
	return hex.EncodeToString(s[:])
}

// run starts Python with the guard preloaded and guardVar as SCONIFY_GUARD; it returns stdout
// and stderr together.
func (l *lab) run(guardVar, script string) string {
	cmd := exec.Command(python, "-c", script)
	cmd.Env = []string{"LD_PRELOAD=" + l.lib, "SCONIFY_GUARD=" + guardVar}
	out, err := cmd.CombinedOutput()
	if err != nil {
		l.t.Fatalf("python: %v\n%s", err, out)
	}
	return string(out)
}

func (l *lab) policy(p int) string { return fmt.Sprintf("%d:%s:%s", p, l.sum, l.manifest) }

const tryImport = `
try:
    import ctypes
    print("imported")
except ImportError as e:
    print("refused:", e)
`

func tryCDLL(name string) string {
	return fmt.Sprintf(`
import ctypes
try:
    ctypes.CDLL(%q)
    print("loaded")
except OSError as e:
    print("refused:", e)
`, name)
}

func TestPolicyZeroRefusesEveryLoad(t *testing.T) {
	l := newLab(t)
	out := l.run(l.policy(0), tryImport)
	want := "refused: sconify guard: dlopen of " + l.ctypes + " refused (SCONE_ALLOW_DLOPEN=0: no library may be loaded after start)"
	if !strings.Contains(out, want) {
		t.Errorf("output:\n%s\nlacks %q", out, want)
	}
}

func TestPolicyOneLoadsOnlyListedFilesThroughTheirDescriptor(t *testing.T) {
	l := newLab(t)
	out := l.run(l.policy(1), tryImport+`
import os
print("main program:", ctypes.CDLL(None).getpid() == os.getpid())
print("mapped via fd:", any("_ctypes" in os.path.realpath("/proc/self/fd/" + f) for f in os.listdir("/proc/self/fd") if os.path.exists("/proc/self/fd/" + f)))
`)
	if !strings.Contains(out, "imported") || !strings.Contains(out, "mapped via fd: True") ||
		!strings.Contains(out, "main program: True") {
		t.Errorf("output:\n%s", out)
	}
	libc := "/lib/x86_64-linux-gnu/libc.so.6"
	out = l.run(l.policy(1), tryCDLL("libc.so.6"))
	want := fmt.Sprintf("refused: sconify guard: dlopen of libc.so.6 refused (SCONE_ALLOW_DLOPEN=1: only libraries in "+
		"the authenticated manifest): %s (sha256 %s) is not in it", libc, fileSum(t, libc))
	if !strings.Contains(out, want) {
		t.Errorf("output:\n%s\nlacks %q", out, want)
	}
	// Listed, loaded twice by name: the second load reuses the first descriptor.
	l.writeManifest(canon.Object{l.ctypes: fileSum(t, l.ctypes), libc: fileSum(t, libc)})
	out = l.run(l.policy(1), `
import ctypes, os
a = ctypes.CDLL("libc.so.6"); b = ctypes.CDLL("libc.so.6")
print("same:", a._handle == b._handle, "getpid:", a.getpid() == os.getpid())
fds = [f for f in os.listdir("/proc/self/fd") if os.path.realpath("/proc/self/fd/" + f).endswith("libc.so.6")]
print("fds:", len(fds))
`)
	if !strings.Contains(out, "same: True getpid: True") || !strings.Contains(out, "fds: 1") {
		t.Errorf("output:\n%s", out)
	}
}

// The C SHA-256 against Go's on lengths around the padding boundaries, seen in refusals.
func TestSHA256(t *testing.T) {
	l := newLab(t)
	dir := t.TempDir()
	for _, n := range []int{0, 1, 55, 56, 63, 64, 65, 119, 120, 128, 65536, 65537, 200000} {
		p := filepath.Join(dir, fmt.Sprintf("f%d", n))
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(i*7 + n)
		}
		testkit.WriteFile(t, p, data, 0o644)
		out := l.run(l.policy(1), tryCDLL(p))
		if want := fmt.Sprintf("%s (sha256 %s)", p, fileSum(t, p)); !strings.Contains(out, want) {
			t.Errorf("size %d: output\n%s\nlacks %q", n, out, want)
		}
	}
}

func TestPolicyTwoLoadsAndLogs(t *testing.T) {
	l := newLab(t)
	out := l.run(l.policy(2), tryCDLL("libc.so.6"))
	if !strings.Contains(out, "loaded") ||
		!strings.Contains(out, "[SCONIFY|WARN] dlopen libc.so.6: loaded without verification (SCONE_ALLOW_DLOPEN=2)") {
		t.Errorf("output:\n%s", out)
	}
}

func TestRefusesWithoutATrustworthyManifest(t *testing.T) {
	l := newLab(t)
	for name, c := range map[string]struct{ guardVar, want string }{
		"missing variable": {"", "SCONIFY_GUARD is missing or malformed, so every load is refused"},
		"bad policy":       {"3" + l.policy(1)[1:], "SCONIFY_GUARD is missing or malformed"},
		"other manifest":   {"1:" + strings.Repeat("0", 64) + ":" + l.manifest, "the manifest " + l.manifest + " is not the one the shim measured"},
		"no manifest":      {"1:" + l.sum + ":/nonexistent.json", "cannot read the manifest /nonexistent.json"},
	} {
		if out := l.run(c.guardVar, tryImport); !strings.Contains(out, "refused: sconify guard: dlopen of "+l.ctypes) ||
			!strings.Contains(out, c.want) {
			t.Errorf("%s: output\n%s\nlacks %q", name, out, c.want)
		}
	}
	testkit.WriteFile(t, l.manifest, []byte(`{"files":{"/x":"zz"},"version":1}`), 0o644)
	raw, _ := os.ReadFile(l.manifest)
	s := sha256.Sum256(raw)
	if out := l.run("1:"+hex.EncodeToString(s[:])+":"+l.manifest, tryImport); !strings.Contains(out, "is not canonical JSON of version 1") {
		t.Errorf("malformed manifest: output\n%s", out)
	}
}
