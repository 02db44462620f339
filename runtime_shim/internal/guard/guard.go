// Package guard prepares the preloading of the dlopen guard (runtime_shim/guard, a C library)
// into a dynamic binary: it finds the binary's program interpreter and sets LD_PRELOAD and the
// guard's own variable in the application's environment (docs/dev/guard.md).
package guard

import (
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
)

// Var carries the policy to the guard: "<policy>:<manifest sha256>:<manifest path>". The guard
// refuses every dlopen when it is missing or malformed.
const Var = "SCONIFY_GUARD"

// ErrNotELF is returned by Interpreter for a file that does not start with the ELF magic.
var ErrNotELF = errors.New("not an ELF file")

// Interpreter returns the PT_INTERP path of the ELF file at p, or "" for a static binary.
func Interpreter(p string) (string, error) {
	fh, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer fh.Close()
	magic := make([]byte, len(elf.ELFMAG))
	if _, err := io.ReadFull(fh, magic); err != nil || string(magic) != elf.ELFMAG {
		return "", ErrNotELF
	}
	f, err := elf.NewFile(fh)
	if err != nil {
		return "", err
	}
	for _, prog := range f.Progs {
		if prog.Type != elf.PT_INTERP {
			continue
		}
		raw, err := io.ReadAll(io.LimitReader(prog.Open(), 4096))
		if err != nil {
			return "", fmt.Errorf("reading its program interpreter: %v", err)
		}
		return strings.TrimRight(string(raw), "\x00"), nil
	}
	return "", nil
}

// IsMusl tells whether an interpreter path is musl's loader, which cannot load the glibc guard.
func IsMusl(interp string) bool {
	return strings.HasPrefix(path.Base(interp), "ld-musl-")
}

// Environment returns envv (sorted) with the guard first in LD_PRELOAD (after it, whatever the session
// preloads) and Var set for policy; a session's own Var is dropped, since only the shim decides.
func Environment(envv []string, guardPath string, policy int, manifestSHA256, manifestPath string) []string {
	out := make([]string, 0, len(envv)+2)
	preload := guardPath
	for _, kv := range envv {
		switch {
		case strings.HasPrefix(kv, Var+"="):
		case strings.HasPrefix(kv, "LD_PRELOAD="):
			if rest := strings.TrimPrefix(kv, "LD_PRELOAD="); rest != "" {
				preload += ":" + rest
			}
		default:
			out = append(out, kv)
		}
	}
	out = append(out, "LD_PRELOAD="+preload, fmt.Sprintf("%s=%d:%s:%s", Var, policy, manifestSHA256, manifestPath))
	sort.Strings(out)
	return out
}
