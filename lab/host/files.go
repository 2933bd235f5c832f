package host

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// SafeDir makes sure dir is a directory labctl may trust as root: created with mode when
// missing (its parent must exist), owned by this user, writable by no other user, and, unless
// followLink, not a symlink. Someone else's or a world-writable directory (a lab run from /
// lands in /tmp) could hold a planted Vagrantfile, which Vagrant runs, or symlinks for state
// and logs: it is refused, with what to do, and nothing is changed.
func SafeDir(dir string, mode os.FileMode, followLink bool) error {
	st, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.Mkdir(dir, mode); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create %s: %w", dir, err)
		}
		st, err = os.Lstat(dir)
	}
	if err != nil {
		return err
	}
	if st.Mode()&fs.ModeSymlink != 0 {
		if !followLink {
			return fmt.Errorf("%s is a symlink: labctl does not follow it (it could point anywhere); remove it, and run labctl again", dir)
		}
		if st, err = os.Stat(dir); err != nil {
			return err
		}
	}
	if !st.IsDir() {
		return fmt.Errorf("%s is not a directory: move it away, and run labctl again", dir)
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Uid) != os.Geteuid() {
		return fmt.Errorf("%s is owned by uid %d, not by you (uid %d): another user could plant files there that labctl would run or follow; run labctl from a checkout of your own", dir, sys.Uid, os.Geteuid())
	}
	if st.Mode().Perm()&0o002 != 0 {
		return fmt.Errorf("%s is writable by every user (mode %04o): another user could plant a Vagrantfile (run as you) or symlinks for state and logs there; run labctl from the lab's own checkout, not from / or a shared directory (or `chmod o-w %s` if you trust every user)", dir, unixMode(st.Mode()), dir)
	}
	return nil
}

// PrivateDir makes dir (its missing parents 0755) a directory that only its owner may enter:
// mode 0700, owned by this user, not a symlink. Box, image and key files live in such.
func PrivateDir(dir string) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	if err := SafeDir(dir, 0o700, false); err != nil {
		return err
	}
	return os.Chmod(dir, 0o700)
}

// OwnerOnly takes the group's and others' permissions off the regular file path (a disk image
// that tools made under a umask of 022: a box's or a layer's disk, which another local user
// could otherwise read by guessing its name). A symlink or a missing file is left alone.
func OwnerOnly(path string) error {
	st, err := os.Lstat(path)
	if err != nil || !st.Mode().IsRegular() || st.Mode().Perm()&0o077 == 0 {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	return os.Chmod(path, st.Mode().Perm()&0o700)
}

// OpenOwn opens the file path with flag (os.O_CREATE: made with mode when missing) for a file
// that is labctl's alone: never through a symlink, and never a file that is not regular or that
// has another hard link, which could be any file of the same file system (a log planted as a
// link to /etc/shadow would be written, or truncated, as root). Pass no os.O_TRUNC: truncate
// the file returned (f.Truncate) once it is known to be labctl's. The error names the file and
// what to do.
func OpenOwn(path string, flag int, mode os.FileMode) (*os.File, error) {
	// O_NONBLOCK: a FIFO planted at path fails here instead of blocking the open for ever.
	f, err := os.OpenFile(path, flag|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, mode)
	if errors.Is(err, syscall.ELOOP) {
		return nil, fmt.Errorf("%s is a symlink: labctl does not write through it (it could point anywhere); remove it", path)
	}
	if errors.Is(err, syscall.ENXIO) { // a FIFO no one reads, a socket
		return nil, fmt.Errorf("%s is not a regular file: labctl writes only files of its own there; remove it", path)
	}
	if err != nil {
		return nil, err
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, err
	}
	switch {
	case st.Mode&syscall.S_IFMT != syscall.S_IFREG:
		err = fmt.Errorf("%s is not a regular file: labctl writes only files of its own there; remove it", path)
	case st.Nlink > 1:
		err = fmt.Errorf("%s has %d hard links: it is also a file elsewhere on this file system, which labctl would write into; remove it (`rm %s`: the other links keep their data), and run labctl again", path, st.Nlink, path)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// OpenAppend is OpenOwn of a log or record that labctl appends to: created with mode when missing.
func OpenAppend(path string, mode os.FileMode) (*os.File, error) {
	return OpenOwn(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, mode)
}

// WriteFileAtomic writes a file through a temporary file beside it, synced and renamed over
// it, and syncs the directory: a reader sees the old content or the new, never a part, and a
// crash leaves one of them. A symlink at path is replaced, never followed.
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(mode)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return SyncDir(filepath.Dir(path))
}

// SyncDir flushes a directory's entries (a rename in it) to disk.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// unixMode is a mode as chmod writes it (1777 for /tmp).
func unixMode(m fs.FileMode) uint32 {
	u := uint32(m.Perm())
	if m&fs.ModeSticky != 0 {
		u |= 0o1000
	}
	return u
}

// Self is this process's binary (labctl) and its version: the sha256 of its content.
func Self() (bin []byte, version string, err error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, "", err
	}
	bin, err = os.ReadFile(exe)
	if err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256(bin)
	return bin, hex.EncodeToString(sum[:]), nil
}
