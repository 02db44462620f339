package scfs

import (
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"sconify/runtime_shim/internal/fatal"
	"sconify/runtime_shim/internal/imagefile"
)

// Statfs magic numbers of the memory-backed file systems (linux/magic.h).
const (
	tmpfsMagic = 0x01021994
	ramfsMagic = 0x858458f6
)

const checkImage = "the image's protected files were modified or belong to another session; pull or convert the image again"

// PreparePlaintextRoot creates the plaintext root dir (and its parents) when missing, refuses
// one that is not a real directory, and reports whether it lives in memory (tmpfs or ramfs).
func PreparePlaintextRoot(dir string) (memoryBacked bool, err error) {
	if err := os.MkdirAll(path.Dir(dir), 0o755); err != nil {
		return false, err
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return false, err
	}
	st, err := os.Lstat(dir)
	if err != nil {
		return false, err
	}
	if !st.IsDir() {
		return false, errors.New("it exists and is not a directory")
	}
	var sfs syscall.Statfs_t
	if err := syscall.Statfs(dir, &sfs); err != nil {
		return false, err
	}
	return sfs.Type == tmpfsMagic || sfs.Type == ramfsMagic, nil
}

// blockOverhead is what tmpfs charges per entry beyond the file bytes (rounded up generously:
// a page for each directory, symlink and the tail of each file).
const blockOverhead = 4096

// Needed is how many bytes of the plaintext root decrypting v takes, at most.
func (v *Volume) Needed() uint64 {
	var total uint64
	for _, r := range v.Regions {
		total += blockOverhead
		for _, e := range r.Entries {
			total += e.Size + blockOverhead
		}
	}
	return total
}

// Files counts the regular files of v and their plaintext bytes.
func (v *Volume) Files() (count int, size uint64) {
	for _, r := range v.Regions {
		for _, e := range r.Entries {
			if e.Type == TypeFile {
				count++
				size += e.Size
			}
		}
	}
	return count, size
}

// Available is how many bytes the file system holding dir can still take (for its user).
func Available(dir string) (uint64, error) {
	var sfs syscall.Statfs_t
	if err := syscall.Statfs(dir, &sfs); err != nil {
		return 0, err
	}
	return sfs.Bavail * uint64(sfs.Bsize), nil
}

// Target says where a volume is decrypted to.
type Target struct {
	PlaintextRoot string // host path of the plaintext root, already prepared
	VolumesDir    string // host path of /sconify/volumes
	VolumeKey     []byte
	Chown         bool // apply the recorded owners (only possible as root)
}

// Materialize writes every region of v below t.PlaintextRoot: a stale region directory is
// removed first; then directories, files (decrypted chunk by chunk) and symlinks are created,
// never following a link; directory modes are applied last so read-only directories can be
// filled. On failure the regions written so far are removed again.
func Materialize(v *Volume, t Target) error {
	var done []string
	for i := range v.Regions {
		dir, err := materializeRegion(&v.Regions[i], t)
		if dir != "" {
			done = append(done, dir)
		}
		if err != nil {
			for _, d := range done {
				_ = removeTree(d)
			}
			return err
		}
	}
	return nil
}

func materializeRegion(r *Region, t Target) (string, error) {
	dir, err := makeRegionDir(t.PlaintextRoot, r.Path)
	if err != nil {
		return "", fatal.New("creating the plaintext directory of "+r.Path, err.Error(),
			"the plaintext root "+t.PlaintextRoot+" must be writable by the image's user")
	}
	var dirs, files, links []*Entry
	for i := range r.Entries {
		e := &r.Entries[i]
		switch e.Type {
		case TypeDir:
			dirs = append(dirs, e)
		case TypeFile:
			files = append(files, e)
		case TypeSymlink:
			links = append(links, e)
		}
	}
	sort.SliceStable(dirs, func(i, j int) bool { return depth(dirs[i].Path) < depth(dirs[j].Path) })

	for _, e := range dirs {
		if err := os.Mkdir(filepath.Join(dir, e.Path), 0o700); err != nil {
			return dir, writeError(r.Path, e.Path, err)
		}
	}
	for _, e := range files {
		if err := writeFile(dir, r.Path, e, t); err != nil {
			return dir, err
		}
	}
	for _, e := range links {
		p := filepath.Join(dir, e.Path)
		if err := os.Symlink(e.Target, p); err != nil {
			return dir, writeError(r.Path, e.Path, err)
		}
		if t.Chown {
			if err := os.Lchown(p, int(e.UID), int(e.GID)); err != nil {
				return dir, writeError(r.Path, e.Path, err)
			}
		}
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		e := dirs[i]
		if err := setOwnerAndMode(filepath.Join(dir, e.Path), e.UID, e.GID, e.Mode, t.Chown); err != nil {
			return dir, writeError(r.Path, e.Path, err)
		}
	}
	if err := setOwnerAndMode(dir, r.UID, r.GID, r.Mode, t.Chown); err != nil {
		return dir, writeError(r.Path, "", err)
	}
	return dir, nil
}

func writeFile(dir, region string, e *Entry, t Target) error {
	image := region + "/" + e.Path
	fileID, _ := hex.DecodeString(e.FileID) // validated when the fspf was opened
	src, err := imagefile.Open(filepath.Join(t.VolumesDir, e.Blob))
	if err != nil {
		return fatal.New("opening the ciphertext of protected file "+image, imagefile.Cause(err), checkImage)
	}
	defer src.Close()
	p := filepath.Join(dir, e.Path)
	dst, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return writeError(region, e.Path, err)
	}
	defer dst.Close()
	if err := DecryptFile(dst, src, t.VolumeKey, fileID, e.Size); err != nil {
		return fatal.New("decrypting protected file "+image, err.Error(), checkImage)
	}
	if t.Chown {
		if err := dst.Chown(int(e.UID), int(e.GID)); err != nil {
			return writeError(region, e.Path, err)
		}
	}
	// After chown, which clears set-user-ID and set-group-ID bits.
	if err := dst.Chmod(os.FileMode(e.Mode&0o777) | specialBits(e.Mode)); err != nil {
		return writeError(region, e.Path, err)
	}
	if err := dst.Close(); err != nil {
		return writeError(region, e.Path, err)
	}
	return nil
}

func setOwnerAndMode(p string, uid, gid, mode uint32, chown bool) error {
	if chown {
		if err := os.Lchown(p, int(uid), int(gid)); err != nil {
			return err
		}
	}
	return os.Chmod(p, os.FileMode(mode&0o777)|specialBits(mode))
}

// specialBits maps the Unix set-user-ID, set-group-ID and sticky bits to Go's FileMode flags.
func specialBits(mode uint32) os.FileMode {
	var m os.FileMode
	if mode&0o4000 != 0 {
		m |= os.ModeSetuid
	}
	if mode&0o2000 != 0 {
		m |= os.ModeSetgid
	}
	if mode&0o1000 != 0 {
		m |= os.ModeSticky
	}
	return m
}

// makeRegionDir creates <root><region> as a fresh, empty directory: missing parents are
// created, parents that are not real directories are refused, and a stale region is removed.
func makeRegionDir(root, region string) (string, error) {
	dir := root
	parts := strings.Split(strings.TrimPrefix(region, "/"), "/")
	for _, part := range parts[:len(parts)-1] {
		dir = filepath.Join(dir, part)
		st, err := os.Lstat(dir)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := os.Mkdir(dir, 0o755); err != nil {
				return "", err
			}
		case err != nil:
			return "", err
		case !st.IsDir():
			return "", errors.New(dir + " is not a directory")
		}
	}
	dir = filepath.Join(dir, parts[len(parts)-1])
	if err := removeTree(dir); err != nil {
		return "", err
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return "", err
	}
	return dir, nil
}

// removeTree removes p and everything below it without following links. Read-only directories
// left by an earlier start (docker restart keeps /dev/shm) are made writable first.
func removeTree(p string) error {
	if err := os.RemoveAll(p); err == nil {
		return nil
	}
	if st, err := os.Lstat(p); err == nil && st.IsDir() {
		_ = filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				_ = os.Chmod(q, 0o700)
			}
			return nil
		})
	}
	return os.RemoveAll(p)
}

func writeError(region, rel string, err error) error {
	image := region
	if rel != "" {
		image += "/" + rel
	}
	return fatal.New("writing the plaintext of "+image, imagefile.Cause(err),
		"the plaintext root must be writable by the image's user and have room for the protected files")
}

func depth(p string) int { return strings.Count(p, "/") }
