package grubenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/rosos/ros/system/blockdev"
	"github.com/rosos/ros/system/mount"
)

// OnESP mounts the ESP (label RANCHER_EFI) at dir, runs f with the
// environment block's path there, syncs and unmounts. Callers that may run
// at once use different dirs.
func OnESP(dir string, f func(envPath string) error) error {
	devs, err := blockdev.List("/sys/class/block", "/dev")
	if err != nil {
		return err
	}
	esp, err := blockdev.FindLabel(devs, "RANCHER_EFI")
	if err != nil {
		return err
	}
	if err := mount.Mount(esp.Path, dir, "vfat", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "iocharset=ascii,codepage=437"); err != nil {
		return err
	}
	defer func() {
		unix.Sync()
		_ = unix.Unmount(dir, 0)
	}()
	return f(filepath.Join(dir, Path))
}

// LockPath is the lock every writer of the environment block holds from
// its read to its write. PID 1 (the boot assessment marks a slot good)
// and the service manager (upgrade, rollback) are two processes that
// change the block; without it one could write back what it read before
// the other's change and undo it.
var LockPath = "/run/ros/grubenv.lock"

// Update mounts the ESP at dir and changes the environment block there
// with f, under LockPath (see UpdateFile).
func Update(dir string, f func(env Env, exists bool) (write bool, err error)) error {
	return locked(func() error {
		return OnESP(dir, func(p string) error { return update(p, f) })
	})
}

// UpdateFile changes the environment block at path with f, under
// LockPath: f gets the block (empty, and exists false, when there is no
// file yet), changes it in place and says whether to write it back.
func UpdateFile(path string, f func(env Env, exists bool) (write bool, err error)) error {
	return locked(func() error { return update(path, f) })
}

func update(path string, f func(Env, bool) (bool, error)) error {
	env, err := Read(path)
	exists := err == nil
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			return err
		}
		env = Env{}
	}
	write, err := f(env, exists)
	if err != nil || !write {
		return err
	}
	return Write(path, env)
}

// locked runs f holding an exclusive flock on LockPath.
func locked(f func() error) error {
	if err := os.MkdirAll(filepath.Dir(LockPath), 0o755); err != nil {
		return fmt.Errorf("grubenv: lock: %w", err)
	}
	l, err := os.OpenFile(LockPath, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("grubenv: lock: %w", err)
	}
	defer l.Close()
	if err := unix.Flock(int(l.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("grubenv: lock %s: %w", LockPath, err)
	}
	return f()
}
