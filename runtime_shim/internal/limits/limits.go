// Package limits applies SCONE_HEAP and SCONE_STACK to the process the shim becomes:
// RLIMIT_DATA = heap and RLIMIT_STACK = stack (glibc also takes its default thread stack size
// from RLIMIT_STACK). The hard limit is lowered to the same value when possible, so the
// application cannot raise them again.
package limits

import (
	"fmt"
	"syscall"
)

// Apply sets the data and stack limits. Errors say which limit could not be set.
func Apply(heap, stack uint64) error {
	if err := set(syscall.RLIMIT_DATA, "RLIMIT_DATA (SCONE_HEAP)", heap); err != nil {
		return err
	}
	return set(syscall.RLIMIT_STACK, "RLIMIT_STACK (SCONE_STACK)", stack)
}

// set tries soft = hard = v; without the privilege to raise the hard limit it falls back to
// soft = v under the existing hard limit, and fails when v exceeds that.
func set(resource int, name string, v uint64) error {
	var cur syscall.Rlimit
	if err := syscall.Getrlimit(resource, &cur); err != nil {
		return fmt.Errorf("reading %s: %v", name, err)
	}
	if err := syscall.Setrlimit(resource, &syscall.Rlimit{Cur: v, Max: v}); err == nil {
		return nil
	}
	if v > cur.Max {
		return fmt.Errorf("%s of %d bytes exceeds the hard limit of %d bytes", name, v, cur.Max)
	}
	if err := syscall.Setrlimit(resource, &syscall.Rlimit{Cur: v, Max: cur.Max}); err != nil {
		return fmt.Errorf("setting %s to %d bytes: %v", name, v, err)
	}
	return nil
}
