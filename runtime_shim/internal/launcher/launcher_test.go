package launcher

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"sconify/runtime_shim/internal/config"
	"sconify/runtime_shim/internal/logging"
	"sconify/runtime_shim/internal/rootfs"
	"sconify/runtime_shim/internal/testkit"
)

// guardRoot is an image root holding a binary copied from the host (a dynamic /bin/sh, a static
// /sbin/ldconfig) at /bin/app.
func guardRoot(t *testing.T, binary []byte) rootfs.Root {
	dir := t.TempDir()
	testkit.WriteFile(t, filepath.Join(dir, "bin/app"), binary, 0o755)
	root, err := rootfs.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func hostFile(t *testing.T, p string) []byte {
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestWithGuard(t *testing.T) {
	session := []string{"A=1", "LD_PRELOAD=/opt/own.so"}
	cfg := &config.Config{Binary: "/bin/app", Guard: "/sconify/lib/libsconify_guard.so", AuthManifest: "/sconify/auth/manifest.json"}
	var logs bytes.Buffer
	log := logging.New(&logs, logging.Warning)

	root := guardRoot(t, hostFile(t, "/bin/sh"))
	got, err := withGuard(root, cfg, &config.Settings{Dlopen: 1}, session, "ab", log)
	want := []string{"A=1", "LD_PRELOAD=" + root.Path(cfg.Guard) + ":/opt/own.so",
		"SCONIFY_GUARD=1:ab:" + root.Path(cfg.AuthManifest)}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("dynamic binary: %q %v", got, err)
	}

	static := guardRoot(t, hostFile(t, "/sbin/ldconfig"))
	if got, err := withGuard(static, cfg, &config.Settings{Dlopen: 0}, session, "ab", log); err != nil || !reflect.DeepEqual(got, session) {
		t.Errorf("static binary: %q %v", got, err)
	}

	noGuard := *cfg
	noGuard.Guard = ""
	if got, err := withGuard(root, &noGuard, &config.Settings{Dlopen: 0}, session, "ab", log); err != nil || !reflect.DeepEqual(got, session) ||
		!strings.Contains(logs.String(), "this image has no dlopen guard: SCONE_ALLOW_DLOPEN=0 is NOT enforced") {
		t.Errorf("no guard: %q %v %s", got, err, logs.String())
	}

	// The same dash, with its PT_INTERP rewritten to musl's loader.
	sh := hostFile(t, "/bin/sh")
	old := []byte("/lib64/ld-linux-x86-64.so.2\x00")
	if !bytes.Contains(sh, old) {
		t.Fatalf("/bin/sh does not name %q", old)
	}
	musl := guardRoot(t, bytes.Replace(sh, old, []byte("/lib/ld-musl-x86_64.so.1\x00\x00\x00\x00"), 1))
	_, err = withGuard(musl, cfg, &config.Settings{Dlopen: 1}, session, "ab", log)
	if err == nil || !strings.Contains(err.Error(), "its loader /lib/ld-musl-x86_64.so.1 is musl's, and the dlopen guard is built for glibc") {
		t.Errorf("musl: %v", err)
	}
	if got, err := withGuard(musl, cfg, &config.Settings{Dlopen: 2}, session, "ab", log); err != nil || !reflect.DeepEqual(got, session) {
		t.Errorf("musl with policy 2: %q %v", got, err)
	}

	// A script: its #! interpreter is what the kernel runs, so the guard is preloaded.
	script := guardRoot(t, []byte("#!/bin/sh\n"))
	got, err = withGuard(script, cfg, &config.Settings{Dlopen: 1}, session, "ab", log)
	if err != nil || len(got) != 3 || got[1] != "LD_PRELOAD="+script.Path(cfg.Guard)+":/opt/own.so" {
		t.Errorf("script: %q %v", got, err)
	}
}
