package testkit

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// RepoRoot returns the repository root: the parent of the directory holding go.mod.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Dir(dir)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's working directory")
		}
		dir = parent
	}
}

// VectorDir returns tests/vectors/<name> and fails the test (never skips it) when the Python
// side has not produced it.
func VectorDir(t testing.TB, name string) string {
	t.Helper()
	dir := filepath.Join(RepoRoot(t), "tests", "vectors", name)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		t.Fatalf("cross-language vectors %s are missing: the Python side writes them "+
			"(docs/contracts.md section 10); they are the acceptance test of this package", dir)
	}
	return dir
}

// LoadJSON decodes the JSON file at p into v, failing the test on any error.
func LoadJSON(t testing.TB, p string, v any) {
	t.Helper()
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("%s: %v", p, err)
	}
}
