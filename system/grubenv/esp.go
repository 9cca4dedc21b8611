package grubenv

import (
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
