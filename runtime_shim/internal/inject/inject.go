// Package inject writes the session's injection files (certificates, keys, config files with
// secrets substituted) into the image before the application starts.
package inject

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"syscall"

	"sconify/runtime_shim/internal/fatal"
	"sconify/runtime_shim/internal/imagefile"
	"sconify/runtime_shim/internal/kdf"
	"sconify/runtime_shim/internal/rootfs"
	"sconify/runtime_shim/internal/session"
)

// Write writes every file (parents created 0755) with its mode. An existing file is
// overwritten; a symlink at the path is refused rather than followed.
func Write(root rootfs.Root, files []session.InjectionFile) error {
	for _, f := range files {
		if err := write(root.Path(f.Path), f); err != nil {
			return fatal.New("writing injection file "+f.Path, imagefile.Cause(err),
				"its directory must be writable by the image's user, or lie in a protected directory")
		}
	}
	return nil
}

func write(p string, f session.InjectionFile) error {
	content, err := base64.StdEncoding.DecodeString(f.ContentB64) // validated by session.Parse
	if err != nil {
		return err
	}
	defer kdf.Zero(content)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	defer out.Close()
	if _, err := out.Write(content); err != nil {
		return err
	}
	if err := out.Chmod(os.FileMode(f.Mode & 0o777)); err != nil {
		return err
	}
	return out.Close()
}
