package scfs

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"sconify/runtime_shim/internal/testkit"
)

type volume struct {
	image, plain string
	w            *testkit.VolumeWriter
	tag          []byte
}

func newVolume(t *testing.T) *volume {
	base := testkit.ShmDir(t)
	v := &volume{image: filepath.Join(base, "image"), plain: filepath.Join(base, "plain")}
	v.w = testkit.NewVolumeWriter(t, v.image)
	return v
}

func (v *volume) fspfPath() string { return filepath.Join(v.image, "sconify", "fspf", "fs.fspf") }

func (v *volume) volumes() string { return filepath.Join(v.image, "sconify", "volumes") }

func (v *volume) materialize(chown bool) error {
	vol, err := OpenFSPF(v.fspfPath(), v.w.Key, v.tag)
	if err != nil {
		return err
	}
	if _, err := PreparePlaintextRoot(v.plain); err != nil {
		return err
	}
	return Materialize(vol, Target{PlaintextRoot: v.plain, VolumesDir: v.volumes(), VolumeKey: v.w.Key, Chown: chown})
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*31 + 7)
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	v := newVolume(t)
	v.w.ChunkSize = 16
	v.w.Region("/app", 0o750, 1000, 1001)
	v.w.Region("/srv/www", 0o755, 0, 0)
	v.w.Dir("/app", "static", 0o755, 0, 0)
	v.w.Dir("/app", "static/css", 0o555, 1000, 1000)
	v.w.File("/app", "app.py", []byte("print('hi')\n"), 0o644, 1000, 1001)
	v.w.File("/app", "empty", nil, 0o600, 0, 0)
	v.w.File("/app", "exact", pattern(32), 0o640, 0, 0)
	v.w.File("/app", "static/css/site.css", pattern(1000), 0o444, 2000, 2000)
	v.w.File("/app", "run", []byte("#!/bin/sh\n"), 0o4755, 0, 0)
	v.w.Symlink("/app", "link", "static/css/site.css", 1000, 1000)
	v.w.Symlink("/app", "abs", "/etc/passwd", 0, 0)
	v.w.File("/srv/www", "index.html", pattern(70000), 0o644, 0, 0)
	v.tag = v.w.Finish()
	if err := v.materialize(true); err != nil {
		t.Fatal(err)
	}
	for rel, want := range map[string][]byte{
		"app/app.py": []byte("print('hi')\n"), "app/empty": {}, "app/exact": pattern(32),
		"app/static/css/site.css": pattern(1000), "srv/www/index.html": pattern(70000),
		"app/link": pattern(1000),
	} {
		got, err := os.ReadFile(filepath.Join(v.plain, rel))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %v (got %d bytes, want %d)", rel, err, len(got), len(want))
		}
	}
	for rel, want := range map[string]struct {
		mode     os.FileMode
		uid, gid uint32
	}{
		"app":                     {os.ModeDir | 0o750, 1000, 1001},
		"app/static/css":          {os.ModeDir | 0o555, 1000, 1000},
		"app/static/css/site.css": {0o444, 2000, 2000},
		"app/run":                 {os.ModeSetuid | 0o755, 0, 0},
		"app/link":                {os.ModeSymlink | 0o777, 1000, 1000},
		"srv/www":                 {os.ModeDir | 0o755, 0, 0},
	} {
		st, err := os.Lstat(filepath.Join(v.plain, rel))
		if err != nil {
			t.Fatal(err)
		}
		sys := st.Sys().(*syscall.Stat_t)
		if st.Mode() != want.mode || sys.Uid != want.uid || sys.Gid != want.gid {
			t.Errorf("%s: mode %v uid %d gid %d, want %v %d %d", rel, st.Mode(), sys.Uid, sys.Gid,
				want.mode, want.uid, want.gid)
		}
	}
	if target, _ := os.Readlink(filepath.Join(v.plain, "app/abs")); target != "/etc/passwd" {
		t.Errorf("abs link points to %q", target)
	}

	// A second start replaces the stale tree, read-only directories included.
	stale := filepath.Join(v.plain, "app", "leftover")
	if err := os.WriteFile(stale, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := v.materialize(false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(stale); !os.IsNotExist(err) {
		t.Fatalf("stale file survived: %v", err)
	}
}

func TestTamperingIsRefused(t *testing.T) {
	cases := map[string]func(v *volume, blob string){
		"flipped byte": func(v *volume, blob string) { mutate(t, v, blob, func(b []byte) []byte { b[60] ^= 1; return b }) },
		"flipped header": func(v *volume, blob string) {
			mutate(t, v, blob, func(b []byte) []byte { b[30] ^= 1; return b })
		},
		"truncated chunk": func(v *volume, blob string) { mutate(t, v, blob, func(b []byte) []byte { return b[:len(b)-1] }) },
		"dropped last chunk": func(v *volume, blob string) {
			mutate(t, v, blob, func(b []byte) []byte { return b[:36+2*(16+16)] })
		},
		"trailing data": func(v *volume, blob string) { mutate(t, v, blob, func(b []byte) []byte { return append(b, 0) }) },
		"reordered chunks": func(v *volume, blob string) {
			mutate(t, v, blob, func(b []byte) []byte {
				c0 := append([]byte{}, b[36:68]...)
				copy(b[36:68], b[68:100])
				copy(b[68:100], c0)
				return b
			})
		},
		"swapped blobs": func(v *volume, blob string) {
			other := v.w.File("/app", "other", pattern(40), 0o644, 0, 0)
			v.tag = v.w.Finish()
			a, b := filepath.Join(v.volumes(), blob), filepath.Join(v.volumes(), other)
			tmp := a + ".tmp"
			must(t, os.Rename(a, tmp), os.Rename(b, a), os.Rename(tmp, b))
		},
		"old fspf": func(v *volume, blob string) {
			v.w.File("/app", "newer", []byte("x"), 0o644, 0, 0)
			v.tag = v.w.Finish()
			// Same key, older document: its tag is not the pinned one.
			old := testkit.SealFSPF(t, v.w.Key, []byte(`{"regions":[],"version":1}`))
			testkit.WriteFile(t, v.fspfPath(), old, 0o644)
		},
		"missing blob": func(v *volume, blob string) { must(t, os.Remove(filepath.Join(v.volumes(), blob))) },
	}
	for name, tamper := range cases {
		t.Run(name, func(t *testing.T) {
			v := newVolume(t)
			v.w.ChunkSize = 16
			v.w.Region("/app", 0o755, 0, 0)
			v.w.File("/app", "a", pattern(10), 0o644, 0, 0)
			blob := v.w.File("/app", "b", pattern(40), 0o644, 0, 0)
			v.tag = v.w.Finish()
			tamper(v, blob)
			err := v.materialize(false)
			if err == nil {
				t.Fatal("tampered volume accepted")
			}
			t.Log(err)
			if _, err := os.Lstat(filepath.Join(v.plain, "app")); !os.IsNotExist(err) {
				t.Errorf("plaintext left behind after a failure: %v", err)
			}
		})
	}
}

func TestWrongKeyAndTag(t *testing.T) {
	v := newVolume(t)
	v.w.Region("/app", 0o755, 0, 0)
	v.tag = v.w.Finish()
	if _, err := OpenFSPF(v.fspfPath(), v.w.Key, append([]byte{v.tag[0] ^ 1}, v.tag[1:]...)); err != ErrTagMismatch {
		t.Errorf("wrong tag: %v", err)
	}
	other := bytes.Repeat([]byte{1}, 32)
	if _, err := OpenFSPF(v.fspfPath(), other, v.tag); err == nil || !strings.Contains(err.Error(), "authentication") {
		t.Errorf("wrong key: %v", err)
	}
}

func TestUnsafeDocumentsAreRefused(t *testing.T) {
	good := `{"path":"a","type":"dir","mode":493,"uid":0,"gid":0}`
	file := `{"path":"f","type":"file","mode":420,"uid":0,"gid":0,"size":0,"file_id":"00112233445566778899aabbccddeeff","blob":"00/x"}`
	cases := map[string]string{
		"dotdot":         `{"path":"../x","type":"dir","mode":493,"uid":0,"gid":0}`,
		"absolute":       `{"path":"/etc","type":"dir","mode":493,"uid":0,"gid":0}`,
		"dot":            `{"path":".","type":"dir","mode":493,"uid":0,"gid":0}`,
		"duplicate":      good + "," + good,
		"under symlink":  `{"path":"l","type":"symlink","target":"/etc","uid":0,"gid":0},{"path":"l/x","type":"dir","mode":493,"uid":0,"gid":0}`,
		"missing parent": `{"path":"a/b","type":"dir","mode":493,"uid":0,"gid":0}`,
		"blob escapes":   strings.Replace(file, `"00/x"`, `"../../etc/passwd"`, 1),
		"short file id":  strings.Replace(file, "00112233445566778899aabbccddeeff", "0011", 1),
		"unknown type":   `{"path":"p","type":"fifo","mode":420,"uid":0,"gid":0}`,
		"empty target":   `{"path":"l","type":"symlink","target":"","uid":0,"gid":0}`,
		"mode too big":   `{"path":"a","type":"dir","mode":65535,"uid":0,"gid":0}`,
		"unknown field":  `{"path":"a","type":"dir","mode":493,"uid":0,"gid":0,"xattr":1}`,
	}
	for name, entries := range cases {
		t.Run(name, func(t *testing.T) {
			v := newVolume(t)
			doc := `{"regions":[{"entries":[` + entries + `],"gid":0,"mode":493,"path":"/app","uid":0}],"version":1}`
			sealed := testkit.SealFSPF(t, v.w.Key, []byte(doc))
			testkit.WriteFile(t, v.fspfPath(), sealed, 0o644)
			if _, err := OpenFSPF(v.fspfPath(), v.w.Key, sealed[len(sealed)-16:]); err == nil {
				t.Fatal("accepted")
			} else {
				t.Log(err)
			}
		})
	}
	for name, doc := range map[string]string{
		"nested regions": `{"regions":[{"entries":[],"gid":0,"mode":493,"path":"/app","uid":0},{"entries":[],"gid":0,"mode":493,"path":"/app/x","uid":0}],"version":1}`,
		"root region":    `{"regions":[{"entries":[],"gid":0,"mode":493,"path":"/","uid":0}],"version":1}`,
		"version 2":      `{"regions":[],"version":2}`,
	} {
		v := newVolume(t)
		sealed := testkit.SealFSPF(t, v.w.Key, []byte(doc))
		testkit.WriteFile(t, v.fspfPath(), sealed, 0o644)
		if _, err := OpenFSPF(v.fspfPath(), v.w.Key, sealed[len(sealed)-16:]); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestDecryptFileHeaderChecks(t *testing.T) {
	key := bytes.Repeat([]byte{9}, 32)
	id, _ := hex.DecodeString("00112233445566778899aabbccddeeff")
	ct := testkit.EncryptFile(key, id, pattern(100), 64)
	var out bytes.Buffer
	if err := DecryptFile(&out, bytes.NewReader(ct), key, id, 100); err != nil || !bytes.Equal(out.Bytes(), pattern(100)) {
		t.Fatalf("round trip: %v", err)
	}
	otherID := append([]byte{1}, id[1:]...)
	for name, run := range map[string]func() error{
		"size mismatch": func() error { return DecryptFile(&out, bytes.NewReader(ct), key, id, 99) },
		"other file id": func() error { return DecryptFile(&out, bytes.NewReader(ct), key, otherID, 100) },
		"flags": func() error {
			bad := append([]byte{}, ct...)
			bad[7] = 1
			return DecryptFile(&out, bytes.NewReader(bad), key, id, 100)
		},
		"empty": func() error { return DecryptFile(&out, bytes.NewReader(nil), key, id, 100) },
		"zero chunk size": func() error {
			bad := append([]byte{}, ct...)
			copy(bad[24:28], []byte{0, 0, 0, 0})
			return DecryptFile(&out, bytes.NewReader(bad), key, id, 100)
		},
	} {
		if err := run(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestPlaintextRoot(t *testing.T) {
	shm := testkit.ShmDir(t)
	mem, err := PreparePlaintextRoot(filepath.Join(shm, "a", "b"))
	if err != nil || !mem {
		t.Fatalf("tmpfs: %v %v", mem, err)
	}
	disk := t.TempDir()
	if mem, err := PreparePlaintextRoot(filepath.Join(disk, "plain")); err != nil || mem {
		t.Fatalf("disk (%s) reported as memory-backed: %v", disk, err)
	}
	link := filepath.Join(shm, "link")
	must(t, os.Symlink(disk, link))
	if _, err := PreparePlaintextRoot(link); err == nil {
		t.Fatal("a symlinked plaintext root was accepted")
	}
}

func mutate(t *testing.T, v *volume, blob string, f func([]byte) []byte) {
	p := filepath.Join(v.volumes(), blob)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	must(t, os.WriteFile(p, f(b), 0o644))
}

func must(t *testing.T, errs ...error) {
	t.Helper()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestNeededCountsFilesAndEntries(t *testing.T) {
	v := &Volume{Regions: []Region{{Path: "/app", Entries: []Entry{
		{Path: "a", Type: "file", Size: 10 << 20}, {Path: "d", Type: "dir"}, {Path: "l", Type: "symlink"},
	}}}}
	if got, want := v.Needed(), uint64(10<<20)+4*blockOverhead; got != want {
		t.Fatalf("Needed() = %d, want %d", got, want)
	}
}
