// Package rootfs maps the absolute paths of a converted image onto the file system the shim
// runs on. In an image that is the identity; SCONIFY_ROOT=<dir> makes the shim treat <dir> as
// the image root, so tests can run it against an unpacked directory tree. The launcher only
// honours a prefix for images whose (measured) configuration has "debug": true; see
// docs/dev/shim.md for why.
package rootfs

import (
	"fmt"
	"path"
)

// Root is an image root: "" means the real "/".
type Root struct {
	prefix string
}

// New returns the root for a SCONIFY_ROOT value; "" and "/" mean the real root.
func New(prefix string) (Root, error) {
	if prefix == "" || prefix == "/" {
		return Root{}, nil
	}
	if !path.IsAbs(prefix) || path.Clean(prefix) != prefix {
		return Root{}, fmt.Errorf("%q is not a clean absolute path", prefix)
	}
	return Root{prefix: prefix}, nil
}

// Prefixed reports whether the root is not the real "/".
func (r Root) Prefixed() bool { return r.prefix != "" }

// Prefix returns the directory used as the image root ("" for the real root).
func (r Root) Prefix() string { return r.prefix }

// Path returns where the image's absolute path abs lives. abs must be absolute (callers
// validate paths that come from documents); it is cleaned, so ".." cannot climb above the root.
func (r Root) Path(abs string) string {
	return r.prefix + path.Clean("/"+abs)
}
