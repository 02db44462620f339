package limits

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"sconify/runtime_shim/internal/testkit"
)

// TestMain doubles as the child process: with LIMITS_CHILD set it applies the limits and execs
// a shell that prints them, as the shim does with the application.
func TestMain(m *testing.M) {
	if os.Getenv("LIMITS_CHILD") == "1" {
		if err := Apply(16<<20, 4<<20); err != nil {
			os.Stderr.WriteString(err.Error())
			os.Exit(3)
		}
		err := syscall.Exec("/bin/sh", []string{"sh", "-c", "ulimit -S -d; ulimit -H -d; ulimit -S -s; ulimit -H -s"}, nil)
		os.Stderr.WriteString(err.Error())
		os.Exit(4)
	}
	os.Exit(m.Run())
}

func child(t *testing.T, cmd *exec.Cmd) (string, error) {
	cmd.Env = []string{"LIMITS_CHILD=1"}
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// Lowering limits needs no privilege, so this holds for any user.
func TestApply(t *testing.T) {
	out, err := child(t, exec.Command(os.Args[0]))
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	// ulimit prints KiB: soft and hard data 16 MiB, soft and hard stack 4 MiB.
	if out != "16384\n16384\n4096\n4096" {
		t.Fatalf("limits seen by the exec'd program:\n%s", out)
	}
}

// Copies the test binary where user nobody can run it, then runs it as nobody under a shell
// that set the limits first: a raise above the hard limit is refused, a lower value is applied.
func TestApplyAsNobody(t *testing.T) {
	dir := testkit.ShmDir(t)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "limits.test")
	data, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	testkit.WriteFile(t, bin, data, 0o755)
	run := func(script string) (string, error) {
		cmd := exec.Command("/bin/sh", "-c", script+"; exec "+bin)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		return child(t, cmd)
	}
	out, err := run("ulimit -s 2048")
	if err == nil || !strings.Contains(out, "RLIMIT_STACK (SCONE_STACK) of 4194304 bytes exceeds the hard limit of 2097152 bytes") {
		t.Fatalf("a raise above the hard limit: %v: %s", err, out)
	}
	out, err = run("ulimit -d 1048576; ulimit -s 8192")
	if err != nil || out != "16384\n16384\n4096\n4096" {
		t.Fatalf("lowering as nobody: %v: %s", err, out)
	}
}
