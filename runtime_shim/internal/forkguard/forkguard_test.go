package forkguard

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
)

// TestMain doubles as the guarded process: it installs the filter, checks that it can still
// start threads but not processes, then execs a shell (the filter survives exec).
func TestMain(m *testing.M) {
	if os.Getenv("FORKGUARD_CHILD") != "" {
		if err := Install(); err != nil {
			os.Stderr.WriteString(err.Error())
			os.Exit(3)
		}
		if err := exec.Command("/bin/true").Run(); err == nil {
			os.Stderr.WriteString("os/exec started a process under the guard")
			os.Exit(4)
		} else {
			os.Stdout.WriteString("go exec: " + err.Error() + "\n")
		}
		script := os.Getenv("FORKGUARD_CHILD")
		err := syscall.Exec("/usr/bin/python3", []string{"python3", "-c", script}, nil)
		os.Stderr.WriteString(err.Error())
		os.Exit(5)
	}
	os.Exit(m.Run())
}

const pythonChecks = `
import os, subprocess, threading
out = []
t = threading.Thread(target=lambda: out.append("thread ok"))
t.start(); t.join()
print(out[0])
for name, f in [("fork", os.fork), ("subprocess", lambda: subprocess.run(["/bin/true"]))]:
    try:
        f()
        print(name, "allowed")
    except OSError as e:
        print(name, "denied:", e.strerror)
`

func TestGuardedProcess(t *testing.T) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = []string{"FORKGUARD_CHILD=" + pythonChecks}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	want := "go exec: fork/exec /bin/true: operation not permitted\n" +
		"thread ok\nfork denied: Operation not permitted\nsubprocess denied: Operation not permitted\n"
	if string(out) != want {
		t.Fatalf("got:\n%s\nwant:\n%s", out, want)
	}
}

func TestProgramJumpsStayInside(t *testing.T) {
	prog := Program()
	for pc, ins := range prog {
		if ins.Code&0x07 == syscall.BPF_JMP {
			for _, off := range []uint8{ins.Jt, ins.Jf} {
				if target := pc + 1 + int(off); target >= len(prog) {
					t.Fatalf("instruction %d jumps to %d of %d", pc, target, len(prog))
				}
			}
		}
	}
	if last := prog[len(prog)-1]; last.Code != syscall.BPF_RET|syscall.BPF_K {
		t.Fatal("the program does not end in a return")
	}
}
