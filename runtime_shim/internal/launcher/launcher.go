// Package launcher runs the shim's steps in order (DESIGN.md section 9): settings, measurement,
// attestation, volume, injection files, limits, exec. Every failure is a *fatal.Error; on
// success Run does not return (the process becomes the application), except for SCONE_HASH=1.
package launcher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strings"
	"syscall"
	"time"

	"sconify/runtime_shim/internal/attest"
	"sconify/runtime_shim/internal/config"
	"sconify/runtime_shim/internal/fatal"
	"sconify/runtime_shim/internal/forkguard"
	"sconify/runtime_shim/internal/guard"
	"sconify/runtime_shim/internal/imagefile"
	"sconify/runtime_shim/internal/inject"
	"sconify/runtime_shim/internal/kdf"
	"sconify/runtime_shim/internal/limits"
	"sconify/runtime_shim/internal/logging"
	"sconify/runtime_shim/internal/measure"
	"sconify/runtime_shim/internal/rootfs"
	"sconify/runtime_shim/internal/scfs"
	"sconify/runtime_shim/internal/session"
)

// VolumesDir holds the ciphertexts of a converted image (contracts section 2).
const VolumesDir = "/sconify/volumes"

// Run starts the application described by the environment and the image, or returns why not.
func Run(env config.LookupFunc, stdout, stderr io.Writer) error {
	s, err := config.FromEnv(env)
	if err != nil {
		return err
	}
	log := logging.New(stderr, s.LogLevel)
	if s.Mode == config.ModeHW {
		return fatal.New("starting with SCONE_MODE=HW", "this sconify build has no TEE backend",
			"unset SCONE_MODE or set SCONE_MODE=SIM to run in simulation mode")
	}
	log.Always(logging.Warning, "simulation mode: files are encrypted at rest and keys are released only after "+
		"attestation, but this process's memory is NOT protected from the host")
	if s.Mode == config.ModeAuto {
		log.Warn("SCONE_MODE=AUTO found no TEE backend in this build; running in simulation mode (SCONE_MODE=SIM says so explicitly)")
	}

	root, cfg, err := loadConfig(s)
	if err != nil {
		return err
	}
	fields, err := measure.Image(root, cfg, s)
	if err != nil {
		return err
	}
	m := fields.Measurement()
	log.Info("measurement %s", m)
	if s.Version {
		reportVersion(log, s, cfg, m)
	}
	if s.Hash {
		_, err := fmt.Fprintln(stdout, m)
		return err
	}

	plain, err := attest.Run(context.Background(), attest.Params{
		CASAddr: s.CASAddr, LASAddr: s.LASAddr, ConfigID: s.ConfigID, CASKeyHash: cfg.CASKeyHash,
		Measurement: m, Debug: cfg.Debug, Timeout: s.AttestTimeout, Log: log,
	})
	if err != nil {
		return err
	}
	sess, err := session.Parse(plain)
	kdf.Zero(plain)
	if err != nil {
		return fatal.New("reading the configuration released by the CAS", err.Error(),
			"the session's service is not usable by this shim; check it with `sconify session read`")
	}
	log.Info("attested as %s (session %s)", s.ConfigID, sess.SessionHash)

	if err := openVolume(root, cfg, s, sess, log); err != nil {
		return err
	}
	if err := inject.Write(root, sess.InjectionFiles); err != nil {
		return err
	}
	return start(root, cfg, s, sess, fields.AuthManifestSHA256, log)
}

// loadConfig resolves the image root and reads config.json. A root other than "/" is honoured
// only for debug images: the dynamic loader and the application open their files from the real
// root, so verifying a tree elsewhere would vouch for files that do not run. config.json is
// measured, so a forged "debug": true changes the measurement.
func loadConfig(s *config.Settings) (rootfs.Root, *config.Config, error) {
	root, err := rootfs.New(s.Root)
	if err != nil {
		return root, nil, fatal.New("reading SCONIFY_ROOT", err.Error(), "unset it; it is for tests against an unpacked image")
	}
	p := s.ConfigPath
	if p == config.DefaultPath {
		p = root.Path(p)
	}
	cfg, err := config.Load(p)
	if err != nil {
		var pe *os.PathError
		check := "the configuration was modified or written by another sconify version; convert the image again"
		if errors.As(err, &pe) {
			check = "this image was not converted by sconify, or its entrypoint was overridden"
		}
		return root, nil, fatal.New("reading the shim configuration "+p, imagefile.Cause(err), check)
	}
	if root.Prefixed() && !cfg.Debug {
		return root, nil, fatal.New("using SCONIFY_ROOT="+root.Prefix(), "the image root may be moved only for debug images",
			"unset SCONIFY_ROOT; it is for tests against an unpacked debug image")
	}
	return root, cfg, nil
}

func openVolume(root rootfs.Root, cfg *config.Config, s *config.Settings, sess *session.Config, log *logging.Logger) error {
	if !sess.HasVolume() {
		if len(cfg.Regions) > 0 {
			return fatal.New("decrypting the protected directories "+strings.Join(cfg.Regions, ", "),
				"the session gives no fspf_path, fspf_key and fspf_tag",
				"the service must carry the volume written at conversion; upload the session sconify_image wrote")
		}
		return nil
	}
	key := sess.VolumeKey()
	defer kdf.Zero(key)
	vol, err := scfs.OpenFSPF(root.Path(sess.FSPFPath), key, sess.VolumeTag())
	if err != nil {
		check := "the image's protected files were modified or belong to another session; pull or convert the image again"
		if errors.Is(err, scfs.ErrTagMismatch) {
			check = "the image's volume is older or newer than the session's; run the image the session was made for"
		}
		return fatal.New("verifying the volume metadata "+sess.FSPFPath, err.Error(), check)
	}
	if got, want := regionPaths(vol), sorted(cfg.Regions); strings.Join(got, ",") != strings.Join(want, ",") {
		return fatal.New("verifying the volume metadata "+sess.FSPFPath,
			fmt.Sprintf("it protects %v where the image's configuration says %v", got, want),
			"the session and the image come from different conversions; upload the session of this image")
	}
	plainRoot := root.Path(cfg.PlaintextRoot)
	inMemory, err := scfs.PreparePlaintextRoot(plainRoot)
	if err != nil {
		return fatal.New("preparing the plaintext root "+cfg.PlaintextRoot, imagefile.Cause(err),
			"its parent must exist and be writable by the image's user")
	}
	if !inMemory {
		if !cfg.Debug || !s.UnsafePlaintextOnDisk {
			return fatal.New("preparing the plaintext root "+cfg.PlaintextRoot, "it is not on a tmpfs or ramfs",
				"mount a tmpfs at "+cfg.PlaintextRoot+" or its parent, e.g. docker run --tmpfs; only a debug image may "+
					"set SCONIFY_UNSAFE_PLAINTEXT_ON_DISK=1")
		}
		log.Warn("the plaintext root %s is not memory-backed: decrypted files go to disk (SCONIFY_UNSAFE_PLAINTEXT_ON_DISK=1)", cfg.PlaintextRoot)
	}
	if err := checkRoom(vol, plainRoot, cfg.PlaintextRoot); err != nil {
		return err
	}
	began := time.Now()
	if err := scfs.Materialize(vol, scfs.Target{
		PlaintextRoot: plainRoot, VolumesDir: root.Path(VolumesDir), VolumeKey: key, Chown: os.Geteuid() == 0,
	}); err != nil {
		return err
	}
	took := time.Since(began).Seconds()
	files, size := vol.Files()
	log.Info("decrypted %s into %s: %d files, %d bytes in %.3f s (%.0f MB/s)",
		strings.Join(regionPaths(vol), ", "), cfg.PlaintextRoot, files, size, took, float64(size)/1e6/math.Max(took, 1e-9))
	return nil
}

// checkRoom refuses to start decrypting what cannot fit: Docker's /dev/shm is 64 MB by default,
// and a volume that fills it half way would fail with a less helpful ENOSPC.
func checkRoom(vol *scfs.Volume, plainRoot, shown string) error {
	free, err := scfs.Available(plainRoot)
	if err != nil {
		return fatal.New("measuring the free space of the plaintext root "+shown, err.Error(),
			"the plaintext root must be a mounted tmpfs")
	}
	need := vol.Needed()
	if need > free {
		mib := func(n uint64) uint64 { return (n + (1<<20 - 1)) >> 20 }
		return fatal.New("decrypting the protected directories into "+shown,
			fmt.Sprintf("they need %d MiB and it has %d MiB free", mib(need), mib(free)),
			fmt.Sprintf("give the container more memory there: docker run --shm-size=%dm, or --tmpfs %s:size=%dm",
				mib(need)+64, "/dev/shm", mib(need)+64))
	}
	return nil
}

// start enters the working directory, applies the fork guard and the limits, and execs the
// binary with exactly the session's argv and environment (plus the dlopen guard's preload for a
// dynamic binary). Everything that allocates happens before the limits, which apply to the shim
// itself until exec.
func start(root rootfs.Root, cfg *config.Config, s *config.Settings, sess *session.Config, manifestSHA256 string,
	log *logging.Logger) error {
	binary := root.Path(cfg.Binary)
	argv := sess.Command
	envv, err := withGuard(root, cfg, s, sess.Env(), manifestSHA256, log)
	if err != nil {
		return err
	}
	if err := os.Chdir(root.Path(sess.PWD)); err != nil {
		return fatal.New("entering the working directory "+sess.PWD, imagefile.Cause(err),
			"the session's pwd must exist in the image or in a protected directory")
	}
	if s.Fork == 0 {
		if err := forkguard.Install(); err != nil {
			return fatal.New("disabling fork for SCONE_FORK=0", err.Error(),
				"the container's seccomp profile must allow the seccomp and prctl system calls")
		}
	}
	if err := limits.Apply(s.Heap, s.Stack); err != nil {
		return fatal.New("applying SCONE_HEAP and SCONE_STACK", err.Error(),
			"raise the container's hard limits with docker run --ulimit, or lower SCONE_HEAP/SCONE_STACK at conversion")
	}
	err = syscall.Exec(binary, argv, envv)
	check := "the binary must exist in the image and be executable by the image's user"
	if errors.Is(err, syscall.E2BIG) {
		check = "arguments and environment may use at most a quarter of SCONE_STACK; raise --stack at conversion"
	}
	return fatal.New("starting "+cfg.Binary, err.Error(), check)
}

// withGuard preloads the dlopen guard when the binary is dynamic: the loader's own loading of
// DT_NEEDED libraries is not a dlopen, but everything loaded later goes through the guard. The
// preload comes from the shim alone (the host's environment never reaches the application).
func withGuard(root rootfs.Root, cfg *config.Config, s *config.Settings, envv []string, manifestSHA256 string,
	log *logging.Logger) ([]string, error) {
	interp, err := guard.Interpreter(root.Path(cfg.Binary))
	switch {
	case errors.Is(err, guard.ErrNotELF):
		// A script: the kernel runs its #! interpreter, which honours the preload when dynamic.
		interp = "#!"
	case err != nil:
		return nil, fatal.New("reading the ELF headers of "+cfg.Binary, err.Error(),
			"the binary must be readable by the image's user; convert the image again")
	case interp == "":
		return envv, nil // static: no loader to interpose on
	}
	if cfg.Guard == "" {
		if s.Dlopen < 2 {
			log.Warn("this image has no dlopen guard: SCONE_ALLOW_DLOPEN=%d is NOT enforced (convert it with a "+
				"sconify build that has the guard for this architecture)", s.Dlopen)
		}
		return envv, nil
	}
	if guard.IsMusl(interp) {
		if s.Dlopen == 2 {
			return envv, nil
		}
		return nil, fatal.New(fmt.Sprintf("enforcing SCONE_ALLOW_DLOPEN=%d for %s", s.Dlopen, cfg.Binary),
			"its loader "+interp+" is musl's, and the dlopen guard is built for glibc",
			"use a glibc-based image, or convert with --dlopen=2 (debug only)")
	}
	return guard.Environment(envv, root.Path(cfg.Guard), s.Dlopen, manifestSHA256, root.Path(cfg.AuthManifest)), nil
}

func reportVersion(log *logging.Logger, s *config.Settings, cfg *config.Config, m string) {
	dlopen := [...]string{"0 (no)", "1 (authenticated only)", "2 (unprotected, debug only)"}[s.Dlopen]
	for _, line := range []string{
		"export SCONE_MODE=SIM", fmt.Sprintf("export SCONE_HEAP=%d", s.Heap),
		fmt.Sprintf("export SCONE_STACK=%d", s.Stack), "export SCONE_ALLOW_DLOPEN=" + dlopen,
		fmt.Sprintf("export SCONE_FORK=%d", s.Fork), "export SCONE_CAS_ADDR=" + s.CASAddr,
		"export SCONE_LAS_ADDR=" + s.LASAddr, "export SCONE_CONFIG_ID=" + s.ConfigID,
		fmt.Sprintf("binary %s, debug %t, regions %v", cfg.Binary, cfg.Debug, cfg.Regions),
		"Enclave hash: " + m,
	} {
		log.Always(logging.Info, "%s", line)
	}
}

func regionPaths(v *scfs.Volume) []string {
	paths := make([]string, len(v.Regions))
	for i, r := range v.Regions {
		paths[i] = r.Path
	}
	return sorted(paths)
}

func sorted(in []string) []string {
	out := append([]string(nil), in...)
	sort.Strings(out)
	return out
}
