package scfs

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sconify/runtime_shim/internal/testkit"
)

type vectorCase struct {
	Why     string `json:"why"`
	Expect  string `json:"expect"`
	FSPFKey string `json:"fspf_key"`
	FSPFTag string `json:"fspf_tag"`
	Tree    []struct {
		Path       string  `json:"path"`
		Type       string  `json:"type"`
		Mode       *uint32 `json:"mode"`
		ContentB64 string  `json:"content_b64"`
		Target     string  `json:"target"`
	} `json:"tree"`
}

// The cross-language acceptance: volumes written by sconify.crypto.scfs decrypt to the listed
// tree, and every tampered one is refused without leaving plaintext behind.
func TestSCFSVectors(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join(testkit.VectorDir(t, "scfs"), "*", "case.json"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no SCFS vector cases: %v", err)
	}
	ok := 0
	for _, p := range dirs {
		var c vectorCase
		testkit.LoadJSON(t, p, &c)
		image := filepath.Join(filepath.Dir(p), "image")
		t.Run(filepath.Base(filepath.Dir(p)), func(t *testing.T) {
			plain := filepath.Join(testkit.ShmDir(t), "plain")
			err := openAndMaterialize(image, plain, c.FSPFKey, c.FSPFTag)
			if c.Expect == "error" {
				if err == nil {
					t.Fatalf("%s: accepted", c.Why)
				}
				t.Logf("%s: %v", c.Why, err)
				leftovers, _ := filepath.Glob(filepath.Join(plain, "*"))
				if len(leftovers) != 0 {
					t.Fatalf("%s: plaintext left behind: %v", c.Why, leftovers)
				}
				return
			}
			if err != nil {
				t.Fatalf("%s: %v", c.Why, err)
			}
			ok++
			checkTree(t, plain, c)
		})
	}
	if ok == 0 {
		t.Fatal("no vector case expects success")
	}
}

func openAndMaterialize(image, plain, keyHex, tagHex string) error {
	key, _ := hex.DecodeString(keyHex)
	tag, _ := hex.DecodeString(tagHex)
	vol, err := OpenFSPF(filepath.Join(image, "sconify", "fspf", "fs.fspf"), key, tag)
	if err != nil {
		return err
	}
	if _, err := PreparePlaintextRoot(plain); err != nil {
		return err
	}
	return Materialize(vol, Target{PlaintextRoot: plain, VolumesDir: filepath.Join(image, "sconify", "volumes"), VolumeKey: key})
}

func checkTree(t *testing.T, plain string, c vectorCase) {
	listed := map[string]bool{}
	for _, e := range c.Tree {
		p := filepath.Join(plain, e.Path)
		listed[p] = true
		st, err := os.Lstat(p)
		if err != nil {
			t.Errorf("%s: %v", e.Path, err)
			continue
		}
		switch e.Type {
		case "dir":
			if !st.IsDir() {
				t.Errorf("%s is %v, not a directory", e.Path, st.Mode())
			}
		case "file":
			want, _ := base64.StdEncoding.DecodeString(e.ContentB64)
			got, err := os.ReadFile(p)
			if !st.Mode().IsRegular() || err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s: %v, %d bytes, want %d", e.Path, err, len(got), len(want))
			}
		case "symlink":
			if got, err := os.Readlink(p); err != nil || got != e.Target {
				t.Errorf("%s -> %q, %v; want %q", e.Path, got, err, e.Target)
			}
		default:
			t.Fatalf("%s: unknown type %q in the vector", e.Path, e.Type)
		}
		if e.Mode != nil && e.Type != "symlink" && uint32(st.Mode().Perm()) != *e.Mode&0o777 {
			t.Errorf("%s: mode %o, want %o", e.Path, st.Mode().Perm(), *e.Mode)
		}
	}
	_ = filepath.WalkDir(plain, func(p string, d fs.DirEntry, err error) error {
		if p != plain && !listed[p] {
			t.Errorf("%s is not in the vector's tree", strings.TrimPrefix(p, plain))
		}
		return nil
	})
}
