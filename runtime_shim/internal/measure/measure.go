// Package measure computes the measurement (the MRENCLAVE analogue, docs/contracts.md section 5)
// of what is about to run and verifies the authenticated-files manifest (section 4).
package measure

import (
	"crypto/sha256"
	"encoding/hex"

	"sconify/runtime_shim/internal/canon"
	"sconify/runtime_shim/internal/config"
	"sconify/runtime_shim/internal/fatal"
	"sconify/runtime_shim/internal/imagefile"
	"sconify/runtime_shim/internal/rootfs"
)

// ShimPath is where a converted image keeps the shim; the file there is measured.
const ShimPath = "/sconify/bin/shim"

// Fields is the document whose canonical JSON is hashed into the measurement.
type Fields struct {
	AuthManifestSHA256 string
	Binary             string
	BinarySHA256       string
	ConfigSHA256       string
	Debug              bool
	Dlopen             int
	Fork               int
	GuardSHA256        string
	Heap               uint64
	ShimSHA256         string
	Stack              uint64
}

// Canonical returns the canonical JSON of the fields (with "version":1).
func (f Fields) Canonical() []byte {
	return canon.Marshal(canon.Object{
		"auth_manifest_sha256": f.AuthManifestSHA256,
		"binary":               f.Binary,
		"binary_sha256":        f.BinarySHA256,
		"config_sha256":        f.ConfigSHA256,
		"debug":                f.Debug,
		"dlopen":               f.Dlopen,
		"fork":                 f.Fork,
		"guard_sha256":         f.GuardSHA256,
		"heap":                 f.Heap,
		"shim_sha256":          f.ShimSHA256,
		"stack":                f.Stack,
		"version":              1,
	})
}

// Measurement returns hex(SHA-256(canonical JSON)).
func (f Fields) Measurement() string {
	sum := sha256.Sum256(f.Canonical())
	return hex.EncodeToString(sum[:])
}

// Image hashes the measured files of the image under root, verifies every file its
// authenticated-files manifest lists, and returns the measurement fields for the effective
// runtime settings. Failures are *fatal.Error naming the file.
func Image(root rootfs.Root, cfg *config.Config, s *config.Settings) (Fields, error) {
	f := Fields{
		Binary: cfg.Binary, ConfigSHA256: hexSum(cfg.Raw), Debug: cfg.Debug,
		Dlopen: s.Dlopen, Fork: s.Fork, Heap: s.Heap, Stack: s.Stack,
	}
	var err error
	if f.ShimSHA256, err = hashImageFile(root, ShimPath, "the shim"); err != nil {
		return Fields{}, err
	}
	if cfg.Guard != "" {
		if f.GuardSHA256, err = hashImageFile(root, cfg.Guard, "the dlopen guard"); err != nil {
			return Fields{}, err
		}
	}
	if f.BinarySHA256, err = hashImageFile(root, cfg.Binary, "the binary"); err != nil {
		return Fields{}, err
	}
	raw, err := imagefile.ReadSmall(root.Path(cfg.AuthManifest), maxManifestSize)
	if err != nil {
		return Fields{}, fatal.New("reading the authenticated-files manifest "+cfg.AuthManifest, imagefile.Cause(err),
			"the image is incomplete or not a converted image; convert it again")
	}
	f.AuthManifestSHA256 = hexSum(raw)
	m, err := ParseManifest(raw)
	if err != nil {
		return Fields{}, fatal.New("reading the authenticated-files manifest "+cfg.AuthManifest, err.Error(),
			"the manifest was modified or written by another sconify version; convert the image again")
	}
	if err := m.Verify(root); err != nil {
		return Fields{}, err
	}
	return f, nil
}

func hashImageFile(root rootfs.Root, abs, what string) (string, error) {
	sum, err := imagefile.Hash(root.Path(abs))
	if err != nil {
		return "", fatal.New("measuring "+what+" "+abs, imagefile.Cause(err),
			"the image is incomplete or not a converted image; convert it again")
	}
	return sum, nil
}

func hexSum(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
