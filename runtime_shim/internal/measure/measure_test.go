package measure

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"sconify/runtime_shim/internal/config"
	"sconify/runtime_shim/internal/rootfs"
	"sconify/runtime_shim/internal/testkit"
)

// The cross-language acceptance: the same fields give the same canonical bytes and
// measurement as sconify.measurement.
func TestMeasurementVectors(t *testing.T) {
	var cases []struct {
		Fields struct {
			AuthManifestSHA256 string `json:"auth_manifest_sha256"`
			Binary             string `json:"binary"`
			BinarySHA256       string `json:"binary_sha256"`
			ConfigSHA256       string `json:"config_sha256"`
			Debug              bool   `json:"debug"`
			Dlopen             int    `json:"dlopen"`
			Fork               int    `json:"fork"`
			GuardSHA256        string `json:"guard_sha256"`
			Heap               uint64 `json:"heap"`
			ShimSHA256         string `json:"shim_sha256"`
			Stack              uint64 `json:"stack"`
			Version            int    `json:"version"`
		} `json:"fields"`
		Canonical   string `json:"canonical"`
		Measurement string `json:"measurement"`
	}
	testkit.LoadJSON(t, filepath.Join(testkit.VectorDir(t, "measurement"), "cases.json"), &cases)
	if len(cases) == 0 {
		t.Fatal("no measurement vectors")
	}
	for i, c := range cases {
		v := c.Fields
		if v.Version != 1 {
			t.Fatalf("case %d: version %d", i, v.Version)
		}
		f := Fields{AuthManifestSHA256: v.AuthManifestSHA256, Binary: v.Binary, BinarySHA256: v.BinarySHA256,
			ConfigSHA256: v.ConfigSHA256, Debug: v.Debug, Dlopen: v.Dlopen, Fork: v.Fork, GuardSHA256: v.GuardSHA256,
			Heap: v.Heap, ShimSHA256: v.ShimSHA256, Stack: v.Stack}
		if got := string(f.Canonical()); got != c.Canonical {
			t.Errorf("case %d canonical:\n got %s\nwant %s", i, got, c.Canonical)
		}
		if got := f.Measurement(); got != c.Measurement {
			t.Errorf("case %d: measurement %s, want %s", i, got, c.Measurement)
		}
	}
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

type tree struct {
	t    *testing.T
	root rootfs.Root
	dir  string
	cfg  *config.Config
}

func newTree(t *testing.T, files map[string]string) *tree {
	dir := t.TempDir()
	root, _ := rootfs.New(dir)
	manifest := map[string]string{}
	for p, content := range files {
		testkit.WriteFile(t, filepath.Join(dir, p), []byte(content), 0o644)
		manifest[p] = sum([]byte(content))
	}
	raw, _ := json.Marshal(map[string]any{"files": manifest, "version": 1})
	testkit.WriteFile(t, filepath.Join(dir, "sconify/auth/manifest.json"), raw, 0o644)
	testkit.WriteFile(t, filepath.Join(dir, ShimPath), []byte("shim"), 0o755)
	cfg := &config.Config{AuthManifest: "/sconify/auth/manifest.json", Binary: "/bin/app", Raw: []byte("{}"), Debug: true}
	return &tree{t: t, root: root, dir: dir, cfg: cfg}
}

func TestImage(t *testing.T) {
	tr := newTree(t, map[string]string{"/bin/app": "app", "/lib/libc.so": "libc"})
	s := &config.Settings{Heap: config.DefaultHeap, Stack: config.DefaultStack, Dlopen: 1}
	f, err := Image(tr.root, tr.cfg, s)
	if err != nil {
		t.Fatal(err)
	}
	manifest, _ := os.ReadFile(filepath.Join(tr.dir, "sconify/auth/manifest.json"))
	want := Fields{AuthManifestSHA256: sum(manifest), Binary: "/bin/app", BinarySHA256: sum([]byte("app")),
		ConfigSHA256: sum([]byte("{}")), Debug: true, Dlopen: 1, Heap: config.DefaultHeap,
		ShimSHA256: sum([]byte("shim")), Stack: config.DefaultStack}
	if f != want {
		t.Fatalf("got %+v\nwant %+v", f, want)
	}
	tr.cfg.Guard = "/sconify/lib/guard.so"
	if _, err := Image(tr.root, tr.cfg, s); err == nil || !strings.Contains(err.Error(), "measuring the dlopen guard /sconify/lib/guard.so") {
		t.Fatalf("missing guard: %v", err)
	}
	testkit.WriteFile(t, filepath.Join(tr.dir, "sconify/lib/guard.so"), []byte("guard"), 0o644)
	if f, err = Image(tr.root, tr.cfg, s); err != nil || f.GuardSHA256 != sum([]byte("guard")) {
		t.Fatalf("guard: %+v %v", f, err)
	}
}

func TestManifestVerification(t *testing.T) {
	tr := newTree(t, map[string]string{"/bin/app": "app", "/lib/a.so": "a", "/lib/b.so": "b"})
	s := &config.Settings{Heap: config.DefaultHeap, Stack: config.DefaultStack}
	testkit.WriteFile(t, filepath.Join(tr.dir, "lib/b.so"), []byte("B"), 0o644)
	_, err := Image(tr.root, tr.cfg, s)
	if err == nil || !strings.HasPrefix(err.Error(), "verifying authenticated file /lib/b.so: its content does not match") {
		t.Fatalf("changed file: %v", err)
	}
	// A FIFO at a measured path fails at once rather than blocking the start.
	if err := os.Remove(filepath.Join(tr.dir, "lib/a.so")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(tr.dir, "lib/a.so"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Image(tr.root, tr.cfg, s)
	if err == nil || !strings.Contains(err.Error(), "/lib/a.so: not a regular file") {
		t.Fatalf("fifo: %v", err)
	}
}

func TestParseManifestRejects(t *testing.T) {
	h := strings.Repeat("a", 64)
	for _, raw := range []string{
		`{"files":{},"version":2}`, `{"files":{"rel":"` + h + `"},"version":1}`,
		`{"files":{"/a":"` + strings.ToUpper(h) + `"},"version":1}`, `{"files":{"/a/../b":"` + h + `"},"version":1}`,
		`{"files":{},"version":1} {}`, `[]`,
	} {
		if _, err := ParseManifest([]byte(raw)); err == nil {
			t.Errorf("accepted %s", raw)
		}
	}
}
