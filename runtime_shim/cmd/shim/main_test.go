package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"sconify/runtime_shim/internal/canon"
	"sconify/runtime_shim/internal/testkit"
)

// shimBin is the shim built once, static as in an image, in a directory any user can read.
var shimBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("/dev/shm", "sconify-shim-bin-")
	if err == nil {
		err = os.Chmod(dir, 0o755)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	shimBin = filepath.Join(dir, "shim")
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", shimBin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the shim: %v\n%s", err, out)
		os.Exit(2)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// image is an unpacked converted image under /dev/shm, run with SCONIFY_ROOT.
type image struct {
	t        *testing.T
	root     string
	cfg      canon.Object
	manifest canon.Object
	vol      *testkit.VolumeWriter
	tag      []byte
	las      *testkit.LAS
	cas      *testkit.CAS
	session  canon.Object
}

const configID = "ns/session/service"

// newImage lays out an image whose binary is a copy of /bin/sh, with a protected /app.
func newImage(t *testing.T) *image {
	base := testkit.ShmDir(t)
	must(t, os.Chmod(base, 0o755))
	im := &image{t: t, root: filepath.Join(base, "image")}
	testkit.WriteFile(t, im.path("/sconify/bin/shim"), read(t, shimBin), 0o755)
	testkit.WriteFile(t, im.path("/bin/sh"), read(t, "/bin/sh"), 0o755)
	testkit.WriteFile(t, im.path("/etc/app.conf"), []byte("conf\n"), 0o644)
	// The image's /dev/shm, like the real one, is world-writable and sticky.
	must(t, os.MkdirAll(im.path("/dev/shm"), 0o755), os.Chmod(im.path("/dev/shm"), 0o1777))
	must(t, os.Symlink(im.path("/dev/shm/sconify/app"), im.path("/app")))

	im.vol = testkit.NewVolumeWriter(t, im.root)
	im.vol.ChunkSize = 1024
	im.vol.Region("/app", 0o755, 0, 0)
	im.vol.Dir("/app", "data", 0o750, 1234, 1234)
	im.vol.File("/app", "data/secret.txt", []byte("top secret\n"), 0o640, 1234, 1234)
	im.vol.File("/app", "big.bin", bytes.Repeat([]byte("0123456789"), 5000), 0o644, 0, 0)
	im.vol.Symlink("/app", "link", "data/secret.txt", 0, 0)
	im.tag = im.vol.Finish()

	im.las = testkit.NewLAS(t)
	im.cas = testkit.NewCAS(t, im.las, configID, nil)
	im.cfg = canon.Object{
		"auth_manifest": "/sconify/auth/manifest.json", "binary": "/bin/sh", "cas_key_hash": im.cas.KeyHash,
		"debug": true, "guard": "", "plaintext_root": "/dev/shm/sconify", "regions": []any{"/app"}, "version": 1,
	}
	im.manifest = canon.Object{"/bin/sh": sha(read(t, "/bin/sh")), "/etc/app.conf": sha([]byte("conf\n"))}
	im.session = canon.Object{
		"command": []any{"sh", "-c", "echo started"}, "environment": canon.Object{"GREETING": "grüß dich"},
		"fspf_key": hex.EncodeToString(im.vol.Key), "fspf_path": "/sconify/fspf/fs.fspf",
		"fspf_tag": hex.EncodeToString(im.tag), "pwd": "/app", "session_hash": "h",
		"injection_files": []any{canon.Object{"path": "/etc/injected/token", "mode": 0o600,
			"content_b64": base64.StdEncoding.EncodeToString([]byte("injected-token"))}},
	}
	return im
}

func (im *image) path(abs string) string { return filepath.Join(im.root, abs) }

// write stores config.json and the manifest, and allows the resulting measurement at the CAS.
func (im *image) write(env map[string]string) string {
	testkit.WriteFile(im.t, im.path("/sconify/config.json"), canon.Marshal(im.cfg), 0o644)
	testkit.WriteFile(im.t, im.path("/sconify/auth/manifest.json"),
		canon.Marshal(canon.Object{"files": im.manifest, "version": 1}), 0o644)
	m := im.expectedMeasurement(env)
	im.cas.Allow(m)
	im.cas.SetConfig(canon.Marshal(im.session))
	return m
}

// expectedMeasurement rebuilds the measurement from docs/contracts.md section 5 by hand.
func (im *image) expectedMeasurement(env map[string]string) string {
	get := func(k, def string) string {
		if v, ok := env[k]; ok {
			return v
		}
		return def
	}
	doc := fmt.Sprintf(`{"auth_manifest_sha256":"%s","binary":"/bin/sh","binary_sha256":"%s",`+
		`"config_sha256":"%s","debug":%v,"dlopen":%s,"fork":%s,"guard_sha256":"","heap":%s,`+
		`"shim_sha256":"%s","stack":%s,"version":1}`,
		sha(read(im.t, im.path("/sconify/auth/manifest.json"))), sha(read(im.t, "/bin/sh")),
		sha(read(im.t, im.path("/sconify/config.json"))), im.cfg["debug"],
		get("SCONE_ALLOW_DLOPEN", "0"), get("SCONE_FORK", "0"), get("heapBytes", "67108864"),
		sha(read(im.t, shimBin)), get("stackBytes", "65536"))
	return sha([]byte(doc))
}

type result struct {
	stdout, stderr string
	code           int
}

// run starts the shim with SCONIFY_ROOT and the services' addresses plus env; cred runs it as
// another user. A host variable is set to check that it never reaches the application.
func (im *image) run(env map[string]string, cred *syscall.Credential) result {
	cmd := exec.Command(shimBin)
	cmd.Env = []string{
		"SCONIFY_ROOT=" + im.root, "SCONE_CAS_ADDR=" + im.cas.Addr(), "SCONE_LAS_ADDR=" + im.las.Addr(),
		"SCONE_CONFIG_ID=" + configID, "HOST_ONLY=leaked", "SCONIFY_ATTEST_TIMEOUT=10",
	}
	for k, v := range env {
		if !strings.HasSuffix(k, "Bytes") {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		im.t.Fatal(err)
	}
	return result{stdout.String(), stderr.String(), code}
}

// fatalLine checks the failure contract: exit status 1, nothing on stdout, every stderr line
// tagged, exactly one FATAL line and it is the last. It returns that line.
func fatalLine(t *testing.T, r result) string {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
	last := lines[len(lines)-1]
	if r.code != 1 || r.stdout != "" || !strings.HasPrefix(last, "[SCONIFY|FATAL] ") ||
		strings.Count(r.stderr, "[SCONIFY|FATAL]") != 1 {
		t.Fatalf("not a clean failure: exit %d\nstdout: %q\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "[SCONIFY|") {
			t.Fatalf("untagged stderr line %q", l)
		}
	}
	return last
}

func TestHashPrintsTheMeasurement(t *testing.T) {
	im := newImage(t)
	env := map[string]string{"SCONE_HASH": "1", "SCONE_HEAP": "1G", "heapBytes": "1073741824",
		"SCONE_STACK": "4M", "stackBytes": "4194304", "SCONE_ALLOW_DLOPEN": "2", "SCONE_FORK": "1"}
	want := im.write(env)
	r := im.run(env, nil)
	if r.code != 0 || r.stdout != want+"\n" {
		t.Fatalf("exit %d, stdout %q, want %q\nstderr:\n%s", r.code, r.stdout, want, r.stderr)
	}
	if !strings.Contains(r.stderr, "[SCONIFY|WARN] simulation mode:") || !strings.Contains(r.stderr, "NOT protected") {
		t.Fatalf("no simulation notice:\n%s", r.stderr)
	}
	if im.cas.Attested() != 0 {
		t.Fatal("SCONE_HASH attested")
	}
	// Another heap is another measurement.
	if r2 := im.run(map[string]string{"SCONE_HASH": "1"}, nil); r2.stdout == r.stdout {
		t.Fatal("the heap does not change the measurement")
	}
}

func TestVersionReport(t *testing.T) {
	im := newImage(t)
	want := im.write(nil)
	r := im.run(map[string]string{"SCONE_VERSION": "1", "SCONE_HASH": "1", "SCONE_MODE": "SIM"}, nil)
	if r.code != 0 || !strings.Contains(r.stderr, "[SCONIFY|INFO] Enclave hash: "+want) ||
		!strings.Contains(r.stderr, "[SCONIFY|INFO] export SCONE_HEAP=67108864") || strings.Contains(r.stderr, "AUTO") {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
}

func TestHardwareModeFails(t *testing.T) {
	im := newImage(t)
	im.write(nil)
	r := im.run(map[string]string{"SCONE_MODE": "hw"}, nil)
	line := fatalLine(t, r)
	if !strings.Contains(line, "[SCONIFY|FATAL] starting with SCONE_MODE=HW: this sconify build has no TEE backend") || strings.Count(r.stderr, "\n") != 1 {
		t.Fatalf("got:\n%s", r.stderr)
	}
}

// The whole start as root: attested, decrypted with owners, injected, limited, and the
// application sees exactly the session's argv, environment and working directory.
func TestStartAsRoot(t *testing.T) {
	im := newImage(t)
	// dash builtins only: with SCONE_FORK=0 even $(...) cannot fork.
	im.session["command"] = []any{"sh", "-c", `echo "argv0=$0 pwd=$PWD"; export -p; ` +
		`read -r s < data/secret.txt; echo "secret=$s"; read -r s < link; echo "link=$s"; ` +
		`read -r tok < ` + im.path("/etc/injected/token") + `; echo "token=$tok"; ` +
		`echo data; ulimit -d; echo stack; ulimit -s; /bin/true; echo "forked"`, "sh-name"}
	env := map[string]string{"SCONE_HEAP": "64M", "SCONE_STACK": "1M", "stackBytes": "1048576"}
	im.write(env)
	r := im.run(env, nil)
	// SCONE_FORK=0: dash dies when it cannot fork /bin/true.
	if r.code != 2 || !strings.HasSuffix(r.stderr, "sh-name: 1: Cannot fork\n") || strings.Contains(r.stdout, "forked") {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{
		"argv0=sh-name", "export GREETING='grüß dich'", "secret=top secret", "link=top secret",
		"token=injected-token", "data\n65536\nstack\n1024\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "HOST_ONLY") || strings.Contains(r.stdout, "SCONIFY_ROOT") {
		t.Errorf("the host environment leaked:\n%s", r.stdout)
	}
	st, err := os.Stat(im.path("/dev/shm/sconify/app/data/secret.txt"))
	if err != nil || st.Sys().(*syscall.Stat_t).Uid != 1234 || st.Mode() != 0o640 {
		t.Errorf("decrypted file: %v %v", st, err)
	}
	if st, err := os.Stat(im.path("/etc/injected/token")); err != nil || st.Mode() != 0o600 {
		t.Errorf("injection file: %v %v", st, err)
	}
	if im.cas.Attested() != 1 {
		t.Errorf("attested %d times", im.cas.Attested())
	}
}

// A non-root image user: the plaintext root lives in the image's sticky /dev/shm, files are
// owned by that user, and SCONE_FORK=1 lets the application start processes.
func TestStartAsNobody(t *testing.T) {
	im := newImage(t)
	im.session["command"] = []any{"sh", "-c", "/bin/cat data/secret.txt token; /usr/bin/id -u"}
	// /etc is root's; a file injected into the protected directory is the user's.
	im.session["injection_files"] = []any{canon.Object{"path": "/app/token", "mode": 0o600, "content_b64": "dG9rCg=="}}
	env := map[string]string{"SCONE_FORK": "1"}
	im.write(env)
	r := im.run(env, &syscall.Credential{Uid: 65534, Gid: 65534})
	if r.code != 0 || r.stdout != "top secret\ntok\n65534\n" {
		t.Fatalf("exit %d\nstdout %q\n%s", r.code, r.stdout, r.stderr)
	}
	st, err := os.Stat(im.path("/dev/shm/sconify/app/data/secret.txt"))
	if err != nil || st.Sys().(*syscall.Stat_t).Uid != 65534 {
		t.Errorf("decrypted file owner: %v %v", st, err)
	}
}

func TestRefusedMeasurementStartsNothing(t *testing.T) {
	im := newImage(t)
	im.write(nil)
	r := im.run(map[string]string{"SCONE_HEAP": "128M"}, nil)
	line := fatalLine(t, r)
	if !strings.Contains(line, `check "mrenclave" failed`) {
		t.Fatalf("got %s", line)
	}
	if _, err := os.Lstat(im.path("/dev/shm/sconify/app")); !os.IsNotExist(err) {
		t.Fatalf("decrypted without attestation: %v", err)
	}
}

func TestTamperedAuthenticatedFile(t *testing.T) {
	im := newImage(t)
	im.write(nil)
	testkit.WriteFile(t, im.path("/etc/app.conf"), []byte("evil\n"), 0o644)
	line := fatalLine(t, im.run(nil, nil))
	if !strings.HasPrefix(line, "[SCONIFY|FATAL] verifying authenticated file /etc/app.conf: its content does not match") {
		t.Fatalf("got %s", line)
	}
	must(t, os.Remove(im.path("/etc/app.conf")))
	line = fatalLine(t, im.run(nil, nil))
	if !strings.Contains(line, "verifying authenticated file /etc/app.conf: no such file or directory") {
		t.Fatalf("got %s", line)
	}
}

func TestTamperedVolume(t *testing.T) {
	im := newImage(t)
	im.write(nil)
	blobs, _ := filepath.Glob(im.path("/sconify/volumes/*/*"))
	for _, b := range blobs {
		data := read(t, b)
		data[len(data)-1] ^= 1
		testkit.WriteFile(t, b, data, 0o644)
	}
	line := fatalLine(t, im.run(nil, nil))
	if !strings.Contains(line, "decrypting protected file /app/") || !strings.Contains(line, "failed authentication") {
		t.Fatalf("got %s", line)
	}
	if _, err := os.Lstat(im.path("/dev/shm/sconify/app")); !os.IsNotExist(err) {
		t.Fatalf("plaintext left after a failure: %v", err)
	}
}

func TestImageRootNeedsDebugImage(t *testing.T) {
	im := newImage(t)
	im.cfg["debug"] = false
	im.write(nil)
	line := fatalLine(t, im.run(map[string]string{"SCONE_HASH": "1"}, nil))
	if !strings.Contains(line, "the image root may be moved only for debug images") {
		t.Fatalf("got %s", line)
	}
}

func TestPlaintextRootOnDisk(t *testing.T) {
	im := newImage(t)
	disk := t.TempDir()
	must(t, os.RemoveAll(im.path("/dev/shm")), os.Symlink(disk, im.path("/dev/shm")))
	im.write(nil)
	line := fatalLine(t, im.run(nil, nil))
	if !strings.Contains(line, "it is not on a tmpfs or ramfs") {
		t.Fatalf("got %s", line)
	}
	r := im.run(map[string]string{"SCONIFY_UNSAFE_PLAINTEXT_ON_DISK": "1"}, nil)
	if r.code != 0 || r.stdout != "started\n" || !strings.Contains(r.stderr, "is not memory-backed") {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func TestUnreachableCASGivesUp(t *testing.T) {
	im := newImage(t)
	im.write(nil)
	im.cas.Server.Close()
	line := fatalLine(t, im.run(map[string]string{"SCONIFY_ATTEST_TIMEOUT": "1"}, nil))
	if !strings.Contains(line, "attestation: gave up after 1s") {
		t.Fatalf("got %s", line)
	}
}

func TestMissingConfig(t *testing.T) {
	im := newImage(t)
	line := fatalLine(t, im.run(nil, nil))
	if !strings.Contains(line, "reading the shim configuration") || !strings.Contains(line, "not converted by sconify") {
		t.Fatalf("got %s", line)
	}
}

func read(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func must(t *testing.T, errs ...error) {
	t.Helper()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}
