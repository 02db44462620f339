// Package scfs reads SCFS v1 volumes (DESIGN.md section 5): it verifies the volume metadata
// (fspf) against the tag the session pins, then decrypts every protected file, chunk by chunk,
// into a memory-backed plaintext root.
package scfs

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"path"
	"strings"

	"sconify/runtime_shim/internal/config"
	"sconify/runtime_shim/internal/imagefile"
	"sconify/runtime_shim/internal/kdf"
)

const (
	gcmNonceSize = 12
	gcmTagSize   = 16
	maxFSPFSize  = 256 << 20
	fspfAAD      = "SCFS1 fspf"
	fspfInfo     = "scfs v1 fspf"
)

// Volume is the decrypted fspf: the protected directories and what they hold.
type Volume struct {
	Version int      `json:"version"`
	Regions []Region `json:"regions"`
}

// Region is one protected directory; Mode, UID and GID are those of the directory itself.
type Region struct {
	Path    string  `json:"path"`
	Mode    uint32  `json:"mode"`
	UID     uint32  `json:"uid"`
	GID     uint32  `json:"gid"`
	Entries []Entry `json:"entries"`
}

// Entry is a directory, file or symlink below a region, at a relative Path.
type Entry struct {
	Path   string `json:"path"`
	Type   string `json:"type"`
	Mode   uint32 `json:"mode"`
	UID    uint32 `json:"uid"`
	GID    uint32 `json:"gid"`
	Size   uint64 `json:"size"`
	FileID string `json:"file_id"`
	Blob   string `json:"blob"`
	Target string `json:"target"`
}

// Entry types.
const (
	TypeDir     = "dir"
	TypeFile    = "file"
	TypeSymlink = "symlink"
)

// ErrTagMismatch means the fspf is not the one the session pins (an older or a foreign one).
var ErrTagMismatch = fmt.Errorf("the volume metadata is not the version the session pins")

// OpenFSPF reads the fspf at p, checks that its GCM tag equals tag (before decrypting),
// decrypts it with the key derived from the volume key and validates the document.
func OpenFSPF(p string, volumeKey, tag []byte) (*Volume, error) {
	sealed, err := imagefile.ReadSmall(p, maxFSPFSize)
	if err != nil {
		return nil, fmt.Errorf("reading it: %s", imagefile.Cause(err))
	}
	if len(sealed) < gcmNonceSize+gcmTagSize || len(tag) != gcmTagSize ||
		subtle.ConstantTimeCompare(sealed[len(sealed)-gcmTagSize:], tag) != 1 {
		return nil, ErrTagMismatch
	}
	key := kdf.HKDF(volumeKey, []byte(fspfInfo))
	defer kdf.Zero(key)
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	plain, err := aead.Open(nil, sealed[:gcmNonceSize], sealed[gcmNonceSize:], []byte(fspfAAD))
	if err != nil {
		return nil, fmt.Errorf("it failed authentication under the session's volume key")
	}
	var v Volume
	dec := json.NewDecoder(bytes.NewReader(plain))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("its document is malformed: %v", err)
	}
	if err := v.validate(); err != nil {
		return nil, err
	}
	return &v, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// validate checks what the fspf's authentication cannot: that the document is one this shim
// can apply safely (a bug in a writer must not let a path escape its region).
func (v *Volume) validate() error {
	if v.Version != 1 {
		return fmt.Errorf("fspf version %d is not supported (this shim reads version 1)", v.Version)
	}
	paths := make([]string, len(v.Regions))
	for i, r := range v.Regions {
		paths[i] = r.Path
	}
	if err := config.CheckRegions(paths); err != nil {
		return err
	}
	for _, r := range v.Regions {
		if err := r.validate(); err != nil {
			return fmt.Errorf("region %s: %v", r.Path, err)
		}
	}
	return nil
}

func (r *Region) validate() error {
	if r.Mode > 0o7777 {
		return fmt.Errorf("mode %o is not a permission mode", r.Mode)
	}
	kinds := make(map[string]string, len(r.Entries))
	for _, e := range r.Entries {
		if !isRelPath(e.Path) {
			return fmt.Errorf("entry path %q is not a clean relative path", e.Path)
		}
		if _, dup := kinds[e.Path]; dup {
			return fmt.Errorf("entry %s is listed twice", e.Path)
		}
		kinds[e.Path] = e.Type
		if err := e.validate(); err != nil {
			return fmt.Errorf("entry %s: %v", e.Path, err)
		}
	}
	// Every parent must be a listed directory: nothing may be created below a symlink.
	for _, e := range r.Entries {
		if parent := path.Dir(e.Path); parent != "." && kinds[parent] != TypeDir {
			return fmt.Errorf("entry %s: its parent %s is not a directory of the volume", e.Path, parent)
		}
	}
	return nil
}

func (e *Entry) validate() error {
	switch e.Type {
	case TypeDir:
	case TypeFile:
		if !config.IsLowerHex(e.FileID, fileIDSize) {
			return fmt.Errorf("file_id %q is not %d bytes of lowercase hex", e.FileID, fileIDSize)
		}
		if !isRelPath(e.Blob) {
			return fmt.Errorf("blob %q is not a clean relative path", e.Blob)
		}
	case TypeSymlink:
		if e.Target == "" || strings.ContainsRune(e.Target, 0) {
			return fmt.Errorf("symlink target %q is not usable", e.Target)
		}
	default:
		return fmt.Errorf("type %q is not dir, file or symlink", e.Type)
	}
	if e.Mode > 0o7777 {
		return fmt.Errorf("mode %o is not a permission mode", e.Mode)
	}
	return nil
}

// isRelPath accepts "a" and "a/b" but not "", "/a", "a/", "a//b", "./a", "a/../b" or NUL.
func isRelPath(p string) bool {
	if p == "" || strings.ContainsRune(p, 0) {
		return false
	}
	for _, part := range strings.Split(p, "/") {
		if part == "" || part == "." || part == ".." {
			return false
		}
	}
	return true
}
