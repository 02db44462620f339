package measure

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"

	"sconify/runtime_shim/internal/config"
	"sconify/runtime_shim/internal/fatal"
	"sconify/runtime_shim/internal/imagefile"
	"sconify/runtime_shim/internal/rootfs"
)

const maxManifestSize = 64 << 20

// Manifest is the authenticated-files manifest: absolute path -> hex SHA-256 of its content.
type Manifest struct {
	Files   map[string]string `json:"files"`
	Version int               `json:"version"`
}

// ParseManifest decodes and validates manifest bytes.
func ParseManifest(raw []byte) (*Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("not valid JSON: %v", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("trailing data after the JSON object")
	}
	if m.Version != 1 {
		return nil, fmt.Errorf("version %d is not supported (this shim reads version 1)", m.Version)
	}
	for p, sum := range m.Files {
		if !config.IsCleanAbs(p) {
			return nil, fmt.Errorf("path %q is not a clean absolute path", p)
		}
		if !config.IsLowerHex(sum, 32) {
			return nil, fmt.Errorf("the hash of %s is not 64 lowercase hex digits", p)
		}
	}
	return &m, nil
}

// Verify hashes every listed file under root, in path order, and fails on the first that is
// missing or whose content differs.
func (m *Manifest) Verify(root rootfs.Root) error {
	paths := make([]string, 0, len(m.Files))
	for p := range m.Files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		sum, err := imagefile.Hash(root.Path(p))
		if err != nil {
			return fatal.New("verifying authenticated file "+p, imagefile.Cause(err),
				"the image was changed after conversion; pull or convert it again")
		}
		if sum != m.Files[p] {
			return fatal.New("verifying authenticated file "+p, "its content does not match the manifest",
				"the image was changed after conversion; pull or convert it again")
		}
	}
	return nil
}
