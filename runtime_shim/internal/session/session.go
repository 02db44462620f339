// Package session reads the configuration the CAS releases to an attested shim (the JWE
// plaintext of docs/contracts.md section 7.5): command, environment, working directory, the
// volume key and tag, and the files to inject.
package session

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"sconify/runtime_shim/internal/config"
)

// InjectionFile is a file the shim writes before starting the application.
type InjectionFile struct {
	Path       string `json:"path"`
	ContentB64 string `json:"content_b64"`
	Mode       uint32 `json:"mode"`
}

// Config is the session's configuration for this service, secrets already substituted.
type Config struct {
	Command        []string          `json:"command"`
	Environment    map[string]string `json:"environment"`
	FSPFKey        string            `json:"fspf_key"`
	FSPFPath       string            `json:"fspf_path"`
	FSPFTag        string            `json:"fspf_tag"`
	InjectionFiles []InjectionFile   `json:"injection_files"`
	PWD            string            `json:"pwd"`
	SessionHash    string            `json:"session_hash"`
}

// Parse decodes and validates the configuration. Unknown fields are refused: a field this shim
// would ignore might carry a policy it does not enforce. An empty pwd means "/".
func Parse(plain []byte) (*Config, error) {
	var c Config
	dec := json.NewDecoder(bytes.NewReader(plain))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("not the expected JSON: %v", err)
	}
	if c.PWD == "" {
		c.PWD = "/"
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

func (c *Config) validate() error {
	if len(c.Command) == 0 || c.Command[0] == "" {
		return fmt.Errorf("the session gives no command")
	}
	for _, arg := range c.Command {
		if strings.ContainsRune(arg, 0) {
			return fmt.Errorf("a command argument contains a NUL byte")
		}
	}
	for k, v := range c.Environment {
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.ContainsRune(v, 0) {
			return fmt.Errorf("environment variable %q cannot be passed to a program", k)
		}
	}
	if !config.IsCleanAbs(c.PWD) {
		return fmt.Errorf("pwd %q is not a clean absolute path", c.PWD)
	}
	if c.HasVolume() {
		if !config.IsCleanAbs(c.FSPFPath) {
			return fmt.Errorf("fspf_path %q is not a clean absolute path", c.FSPFPath)
		}
		if k, err := hex.DecodeString(c.FSPFKey); err != nil || len(k) != 32 {
			return fmt.Errorf("fspf_key is not 32 bytes of hex")
		}
		if t, err := hex.DecodeString(c.FSPFTag); err != nil || len(t) != 16 {
			return fmt.Errorf("fspf_tag is not 16 bytes of hex")
		}
	} else if c.FSPFKey != "" || c.FSPFTag != "" {
		return fmt.Errorf("fspf_key and fspf_tag are given without fspf_path")
	}
	for _, f := range c.InjectionFiles {
		if !config.IsCleanAbs(f.Path) || f.Path == "/" {
			return fmt.Errorf("injection file path %q is not a clean absolute path", f.Path)
		}
		if _, err := base64.StdEncoding.Strict().DecodeString(f.ContentB64); err != nil {
			return fmt.Errorf("injection file %s: content_b64 is not base64", f.Path)
		}
		if f.Mode > 0o7777 {
			return fmt.Errorf("injection file %s: mode %o is not a permission mode", f.Path, f.Mode)
		}
	}
	return nil
}

// HasVolume reports whether the session gives a volume (fspf_path, fspf_key and fspf_tag).
func (c *Config) HasVolume() bool { return c.FSPFPath != "" }

// VolumeKey returns the decoded fspf_key; the caller zeroes it after use.
func (c *Config) VolumeKey() []byte {
	k, _ := hex.DecodeString(c.FSPFKey)
	return k
}

// VolumeTag returns the decoded fspf_tag.
func (c *Config) VolumeTag() []byte {
	t, _ := hex.DecodeString(c.FSPFTag)
	return t
}

// Env returns the environment as "KEY=value" strings in key order: exactly the session's, never
// the host's.
func (c *Config) Env() []string {
	env := make([]string, 0, len(c.Environment))
	for k, v := range c.Environment {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	return env
}
