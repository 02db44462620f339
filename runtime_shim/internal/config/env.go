package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"sconify/runtime_shim/internal/fatal"
	"sconify/runtime_shim/internal/logging"
)

// Mode is the SCONE_MODE the shim runs in.
type Mode int

// The SCONE modes. This build has no TEE backend: HW always fails, AUTO falls back to SIM.
const (
	ModeAuto Mode = iota
	ModeSim
	ModeHW
)

// String returns the SCONE_MODE spelling.
func (m Mode) String() string {
	return [...]string{"AUTO", "SIM", "HW"}[m]
}

// DefaultAttestTimeout bounds the whole attestation when SCONIFY_ATTEST_TIMEOUT is unset.
const DefaultAttestTimeout = 20 * time.Second

// Settings is everything the environment tells the shim. Variables that are set but empty
// count as unset.
type Settings struct {
	Mode     Mode
	Heap     uint64 // SCONE_HEAP in bytes
	Stack    uint64 // SCONE_STACK in bytes
	Dlopen   int    // SCONE_ALLOW_DLOPEN: 0, 1 or 2
	Fork     int    // SCONE_FORK: 0 or 1
	Hash     bool   // SCONE_HASH=1: print the measurement and exit
	Version  bool   // SCONE_VERSION=1: report settings and measurement at start
	LogLevel logging.Level

	CASAddr  string // SCONE_CAS_ADDR, host[:port]
	LASAddr  string // SCONE_LAS_ADDR, host[:port]
	ConfigID string // SCONE_CONFIG_ID, <namespace>/<session>/<service>

	AttestTimeout         time.Duration // SCONIFY_ATTEST_TIMEOUT
	UnsafePlaintextOnDisk bool          // SCONIFY_UNSAFE_PLAINTEXT_ON_DISK=1 (debug images only)
	Root                  string        // SCONIFY_ROOT: image root prefix (debug images only)
	ConfigPath            string        // SCONIFY_CONFIG: config.json path, used as given
}

// LookupFunc is os.LookupEnv or a test's stand-in.
type LookupFunc func(string) (string, bool)

// FromEnv reads and validates the environment; the first bad variable is a *fatal.Error.
func FromEnv(lookup LookupFunc) (*Settings, error) {
	get := func(name string) string {
		v, _ := lookup(name)
		return v
	}
	s := &Settings{
		Heap: DefaultHeap, Stack: DefaultStack, LogLevel: logging.DefaultLevel,
		CASAddr: get("SCONE_CAS_ADDR"), LASAddr: get("SCONE_LAS_ADDR"),
		ConfigID: get("SCONE_CONFIG_ID"), AttestTimeout: DefaultAttestTimeout,
		Root: get("SCONIFY_ROOT"), ConfigPath: get("SCONIFY_CONFIG"),
	}
	if s.ConfigPath == "" {
		s.ConfigPath = DefaultPath
	}
	var err error
	if v := get("SCONE_LOG"); v != "" {
		if s.LogLevel, err = logging.ParseLevel(v); err != nil {
			return nil, bad("SCONE_LOG", err, "use FATAL, ERROR, WARNING, INFO, DEBUG, TRACE or 0-7")
		}
	}
	switch v := strings.ToUpper(get("SCONE_MODE")); v {
	case "", "AUTO":
		s.Mode = ModeAuto
	case "SIM":
		s.Mode = ModeSim
	case "HW":
		s.Mode = ModeHW
	default:
		return nil, bad("SCONE_MODE", fmt.Errorf("%q is not a mode", get("SCONE_MODE")), "use SIM, HW or AUTO")
	}
	if v := get("SCONE_HEAP"); v != "" {
		if s.Heap, err = ParseSizeIn(v, HeapMin, HeapMax); err != nil {
			return nil, bad("SCONE_HEAP", err, "give a size between 8M and 60G, e.g. 1G, as at conversion")
		}
	}
	if v := get("SCONE_STACK"); v != "" {
		if s.Stack, err = ParseSizeIn(v, StackMin, StackMax); err != nil {
			return nil, bad("SCONE_STACK", err, "give a size between 32K and 8M, e.g. 4M, as at conversion")
		}
	}
	if s.Dlopen, err = choice(get("SCONE_ALLOW_DLOPEN"), 2); err != nil {
		return nil, bad("SCONE_ALLOW_DLOPEN", err, "use 0, 1 or 2, as at conversion")
	}
	if s.Fork, err = choice(get("SCONE_FORK"), 1); err != nil {
		return nil, bad("SCONE_FORK", err, "use 0 or 1, as at conversion")
	}
	for name, dst := range map[string]*bool{
		"SCONE_HASH": &s.Hash, "SCONE_VERSION": &s.Version,
		"SCONIFY_UNSAFE_PLAINTEXT_ON_DISK": &s.UnsafePlaintextOnDisk,
	} {
		n, err := choice(get(name), 1)
		if err != nil {
			return nil, bad(name, err, "use 1 to enable or 0 to disable")
		}
		*dst = n == 1
	}
	if v := get("SCONIFY_ATTEST_TIMEOUT"); v != "" {
		secs, err := strconv.ParseUint(v, 10, 16)
		if err != nil || secs == 0 {
			return nil, bad("SCONIFY_ATTEST_TIMEOUT", fmt.Errorf("%q is not a positive number of seconds", v),
				"give whole seconds, e.g. 20")
		}
		s.AttestTimeout = time.Duration(secs) * time.Second
	}
	return s, nil
}

// choice parses "" (meaning 0) or a single digit from 0 to max.
func choice(v string, max int) (int, error) {
	if v == "" {
		return 0, nil
	}
	if len(v) == 1 && v[0] >= '0' && int(v[0]-'0') <= max {
		return int(v[0] - '0'), nil
	}
	return 0, fmt.Errorf("%q is not a number from 0 to %d", v, max)
}

func bad(name string, err error, check string) *fatal.Error {
	return fatal.New("reading "+name, err.Error(), check)
}
