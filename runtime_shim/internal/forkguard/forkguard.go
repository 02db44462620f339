// Package forkguard enforces SCONE_FORK=0: a seccomp filter, inherited by the application
// across exec, makes fork, vfork and every clone that does not create a thread fail with EPERM
// (DESIGN.md section 9). clone3 fails with ENOSYS, so libc falls back to clone, whose flags a
// filter can read. Threads keep working.
package forkguard

import (
	"fmt"
	"runtime"
	"syscall"
	"unsafe"
)

// The architecture-specific numbers (auditArch, sysSeccomp, sysClone, sysFork, sysVfork) are in
// forkguard_<arch>.go.
const (
	prSetNoNewPrivs       = 38
	seccompSetModeFilter  = 1
	seccompFilterFlagSync = 1 // SECCOMP_FILTER_FLAG_TSYNC: every thread of the shim, not only this one

	x32SyscallBit = 0x40000000
	sysClone3     = 435 // the same number on every architecture
	cloneThread   = 0x00010000
	// noSyscall stands for fork and vfork where the architecture has no such call (arm64):
	// no syscall number compares equal to it.
	noSyscall = 0xffffffff

	retAllow = 0x7fff0000
	retErrno = 0x00050000
)

// Offsets into struct seccomp_data.
const (
	offNr   = 0
	offArch = 4
	offArg0 = 16 // low 32 bits of args[0] (both supported architectures are little-endian)
)

// Program returns the filter. Syscalls of another ABI (i386, x32) are refused outright: they
// would reach fork under other numbers.
func Program() []syscall.SockFilter {
	const allow, deny, nosys = 10, 11, 12 // indices of the return instructions below
	ld := func(off uint32) syscall.SockFilter {
		return syscall.SockFilter{Code: syscall.BPF_LD | syscall.BPF_W | syscall.BPF_ABS, K: off}
	}
	jmp := func(pc int, op uint16, k uint32, jt, jf int) syscall.SockFilter {
		return syscall.SockFilter{Code: syscall.BPF_JMP | op | syscall.BPF_K, K: k,
			Jt: uint8(jt - pc - 1), Jf: uint8(jf - pc - 1)}
	}
	ret := func(k uint32) syscall.SockFilter {
		return syscall.SockFilter{Code: syscall.BPF_RET | syscall.BPF_K, K: k}
	}
	return []syscall.SockFilter{
		0:     ld(offArch),
		1:     jmp(1, syscall.BPF_JEQ, auditArch, 2, deny),
		2:     ld(offNr),
		3:     jmp(3, syscall.BPF_JGE, x32SyscallBit, deny, 4),
		4:     jmp(4, syscall.BPF_JEQ, sysFork, deny, 5),
		5:     jmp(5, syscall.BPF_JEQ, sysVfork, deny, 6),
		6:     jmp(6, syscall.BPF_JEQ, sysClone3, nosys, 7),
		7:     jmp(7, syscall.BPF_JEQ, sysClone, 8, allow),
		8:     ld(offArg0),
		9:     jmp(9, syscall.BPF_JSET, cloneThread, allow, deny),
		allow: ret(retAllow),
		deny:  ret(retErrno | uint32(syscall.EPERM)),
		nosys: ret(retErrno | uint32(syscall.ENOSYS)),
	}
}

// Install sets no_new_privs (required to install a filter without CAP_SYS_ADMIN) and the
// filter on every thread of the process. The calling goroutine stays on its thread: the caller
// is about to exec.
func Install() error {
	runtime.LockOSThread()
	if _, _, errno := syscall.RawSyscall6(syscall.SYS_PRCTL, prSetNoNewPrivs, 1, 0, 0, 0, 0); errno != 0 {
		return fmt.Errorf("prctl(PR_SET_NO_NEW_PRIVS): %v", errno)
	}
	prog := Program()
	fprog := syscall.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	_, _, errno := syscall.RawSyscall(sysSeccomp, seccompSetModeFilter, seccompFilterFlagSync,
		uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(prog)
	if errno != 0 {
		return fmt.Errorf("seccomp(SECCOMP_SET_MODE_FILTER): %v", errno)
	}
	return nil
}
