package testkit

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"sconify/runtime_shim/internal/canon"
	"sconify/runtime_shim/internal/kdf"
)

// VolumeWriter writes an SCFS v1 volume into an image tree the way sconify.crypto.scfs does:
// ciphertexts under <image>/sconify/volumes/<id[0:2]>/<id>, the sealed fspf at
// <image>/sconify/fspf/fs.fspf.
type VolumeWriter struct {
	T         testing.TB
	Image     string // image root directory
	Key       []byte // 32-byte volume key
	ChunkSize uint32 // 0 means 65536
	regions   map[string]canon.Object
	entries   map[string][]canon.Object
}

// NewVolumeWriter returns a writer with a random volume key.
func NewVolumeWriter(t testing.TB, image string) *VolumeWriter {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	return &VolumeWriter{T: t, Image: image, Key: key,
		regions: map[string]canon.Object{}, entries: map[string][]canon.Object{}}
}

// Region declares a protected directory with the mode and owner of the directory itself.
func (w *VolumeWriter) Region(p string, mode, uid, gid int) {
	w.regions[p] = canon.Object{"path": p, "mode": mode, "uid": uid, "gid": gid}
}

// Dir adds a directory below a region.
func (w *VolumeWriter) Dir(region, rel string, mode, uid, gid int) {
	w.entries[region] = append(w.entries[region],
		canon.Object{"path": rel, "type": "dir", "mode": mode, "uid": uid, "gid": gid})
}

// Symlink adds a symbolic link below a region.
func (w *VolumeWriter) Symlink(region, rel, target string, uid, gid int) {
	w.entries[region] = append(w.entries[region],
		canon.Object{"path": rel, "type": "symlink", "target": target, "uid": uid, "gid": gid})
}

// File encrypts content as a file below a region and returns its blob path (relative to
// <image>/sconify/volumes).
func (w *VolumeWriter) File(region, rel string, content []byte, mode, uid, gid int) string {
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		w.T.Fatal(err)
	}
	cs := w.ChunkSize
	if cs == 0 {
		cs = 65536
	}
	hexID := hex.EncodeToString(id)
	blob := hexID[:2] + "/" + hexID
	out := filepath.Join(w.Image, "sconify", "volumes", blob)
	WriteFile(w.T, out, EncryptFile(w.Key, id, content, cs), 0o644)
	w.entries[region] = append(w.entries[region], canon.Object{
		"path": rel, "type": "file", "mode": mode, "uid": uid, "gid": gid,
		"size": len(content), "file_id": hexID, "blob": blob,
	})
	return blob
}

// Document returns the canonical JSON of the fspf (regions by path, entries by path bytes).
func (w *VolumeWriter) Document() []byte {
	var paths []string
	for p := range w.regions {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	regions := make([]any, 0, len(paths))
	for _, p := range paths {
		entries := w.entries[p]
		sort.Slice(entries, func(i, j int) bool {
			return entries[i]["path"].(string) < entries[j]["path"].(string)
		})
		list := make([]any, len(entries))
		for i, e := range entries {
			list[i] = e
		}
		r := canon.Object{"entries": list}
		for k, v := range w.regions[p] {
			r[k] = v
		}
		regions = append(regions, r)
	}
	return canon.Marshal(canon.Object{"version": 1, "regions": regions})
}

// Finish seals the fspf into the image and returns its tag (what the session pins).
func (w *VolumeWriter) Finish() []byte {
	sealed := SealFSPF(w.T, w.Key, w.Document())
	WriteFile(w.T, filepath.Join(w.Image, "sconify", "fspf", "fs.fspf"), sealed, 0o644)
	return sealed[len(sealed)-16:]
}

// SealFSPF encrypts an fspf document: nonce || ciphertext || tag.
func SealFSPF(t testing.TB, volumeKey, doc []byte) []byte {
	nonce := make([]byte, 12)
	if _, err := rand.Read(nonce); err != nil {
		t.Fatal(err)
	}
	aead := gcm(kdf.HKDF(volumeKey, []byte("scfs v1 fspf")))
	return aead.Seal(nonce, nonce, doc, []byte("SCFS1 fspf"))
}

// EncryptFile returns the SCFS v1 ciphertext of content.
func EncryptFile(volumeKey, fileID, content []byte, chunkSize uint32) []byte {
	header := make([]byte, 36)
	copy(header, "SCFS1\x00")
	header[6] = 1
	copy(header[8:24], fileID)
	binary.BigEndian.PutUint32(header[24:28], chunkSize)
	binary.BigEndian.PutUint64(header[28:36], uint64(len(content)))
	aead := gcm(kdf.HKDF(volumeKey, append([]byte("scfs v1 file"), fileID...)))
	out := append([]byte{}, header...)
	chunks := (len(content) + int(chunkSize) - 1) / int(chunkSize)
	if chunks == 0 {
		chunks = 1
	}
	for i := 0; i < chunks; i++ {
		lo := i * int(chunkSize)
		hi := lo + int(chunkSize)
		if hi > len(content) {
			hi = len(content)
		}
		nonce := make([]byte, 12)
		binary.BigEndian.PutUint64(nonce[4:], uint64(i))
		aad := append(append([]byte{}, header...), nonce[4:]...)
		last := byte(0)
		if i == chunks-1 {
			last = 1
		}
		aad = append(aad, last)
		out = aead.Seal(out, nonce, content[lo:hi], aad)
	}
	return out
}

func gcm(key []byte) cipher.AEAD {
	block, err := aes.NewCipher(key)
	if err != nil {
		panic(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return aead
}

// WriteFile writes data at p, creating parent directories.
func WriteFile(t testing.TB, p string, data []byte, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, mode); err != nil {
		t.Fatal(err)
	}
}

// ShmDir returns a fresh directory on /dev/shm (a tmpfs), removed after the test.
func ShmDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("/dev/shm", "sconify-shim-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				_ = os.Chmod(p, 0o700)
			}
			return nil
		})
		_ = os.RemoveAll(dir)
	})
	return dir
}
