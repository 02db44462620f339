package forkguard

// x86_64 (AUDIT_ARCH_X86_64 and the syscall numbers of arch/x86/entry/syscalls/syscall_64.tbl).
const (
	auditArch  = 0xc000003e
	sysSeccomp = 317
	sysClone   = 56
	sysFork    = 57
	sysVfork   = 58
)
