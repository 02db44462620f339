package forkguard

// aarch64 (AUDIT_ARCH_AARCH64 and the generic syscall table): there is no fork or vfork
// syscall, libc forks through clone.
const (
	auditArch  = 0xc00000b7
	sysSeccomp = 277
	sysClone   = 220
	sysFork    = noSyscall
	sysVfork   = noSyscall
)
