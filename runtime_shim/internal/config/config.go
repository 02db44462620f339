// Package config reads what the shim is told before attestation: /sconify/config.json
// (docs/contracts.md section 3) and the SCONE_* / SCONIFY_* environment (section 8).
package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path"
	"strings"

	"sconify/runtime_shim/internal/imagefile"
)

// DefaultPath is where a converted image keeps its configuration.
const DefaultPath = "/sconify/config.json"

// Config is the measured shim configuration of an image.
type Config struct {
	AuthManifest  string   `json:"auth_manifest"`
	Binary        string   `json:"binary"`
	CASKeyHash    string   `json:"cas_key_hash"`
	Debug         bool     `json:"debug"`
	Guard         string   `json:"guard"`
	PlaintextRoot string   `json:"plaintext_root"`
	Regions       []string `json:"regions"`
	Version       int      `json:"version"`

	// Raw holds the exact bytes that were parsed: they, not a re-encoding, are measured.
	Raw []byte `json:"-"`
}

// Parse decodes and validates config.json bytes.
func Parse(raw []byte) (*Config, error) {
	var c Config
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("not valid JSON: %v", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("trailing data after the JSON object")
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	c.Raw = raw
	return &c, nil
}

func (c *Config) validate() error {
	if c.Version != 1 {
		return fmt.Errorf("version %d is not supported (this shim reads version 1)", c.Version)
	}
	for field, p := range map[string]string{
		"binary": c.Binary, "auth_manifest": c.AuthManifest, "plaintext_root": c.PlaintextRoot,
	} {
		if !IsCleanAbs(p) {
			return fmt.Errorf("%s %q is not a clean absolute path", field, p)
		}
	}
	if c.Guard != "" && !IsCleanAbs(c.Guard) {
		return fmt.Errorf("guard %q is not a clean absolute path", c.Guard)
	}
	if c.PlaintextRoot == "/" {
		return fmt.Errorf("plaintext_root must not be /")
	}
	if !IsLowerHex(c.CASKeyHash, 32) {
		return fmt.Errorf("cas_key_hash %q is not 64 lowercase hex digits", c.CASKeyHash)
	}
	return CheckRegions(c.Regions)
}

// CheckRegions accepts a list of protected directories: clean absolute paths other than "/",
// none inside another (the fspf is checked against the same rule).
func CheckRegions(regions []string) error {
	for i, r := range regions {
		if !IsCleanAbs(r) || r == "/" {
			return fmt.Errorf("region %q is not a clean absolute path below /", r)
		}
		for _, other := range regions[:i] {
			if r == other || strings.HasPrefix(r, other+"/") || strings.HasPrefix(other, r+"/") {
				return fmt.Errorf("regions %s and %s overlap", other, r)
			}
		}
	}
	return nil
}

// IsCleanAbs reports whether p is absolute and already in path.Clean form.
func IsCleanAbs(p string) bool {
	return path.IsAbs(p) && path.Clean(p) == p && !strings.ContainsRune(p, 0)
}

// IsLowerHex reports whether s is exactly n bytes written as 2n lowercase hex digits.
func IsLowerHex(s string, n int) bool {
	if len(s) != 2*n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

const maxConfigSize = 1 << 20

// Load reads and parses the configuration file at p (a host path, already mapped to the root).
func Load(p string) (*Config, error) {
	raw, err := imagefile.ReadSmall(p, maxConfigSize)
	if err != nil {
		return nil, err
	}
	return Parse(raw)
}
