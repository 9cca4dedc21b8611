package pid1

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/rosos/ros/system/blockdev"
	"github.com/rosos/ros/system/grubenv"
	"github.com/rosos/ros/system/mount"
)

// DefaultTries is how many boots a slot gets before GRUB gives up on it.
const DefaultTries = 3

// onTrial reports whether slot is being tried (after an upgrade or a
// rollback) and has not booted well yet: such a boot may be given up.
func onTrial(slot string) bool {
	trial := false
	_ = withEnv(func(path string) error {
		env, err := grubenv.Read(path)
		if err != nil {
			return err
		}
		trial = env[grubenv.KeyNext] == slot || env[grubenv.GoodKey(slot)] == "0"
		return nil
	})
	return trial
}

// markGood records on the ESP that slot booted well: GRUB will boot it by
// default and its tries are full again.
func markGood(slot string) error {
	if !grubenv.ValidSlot(slot) {
		return fmt.Errorf("booted without ros.slot: nothing to mark")
	}
	return withEnv(func(path string) error {
		env, err := grubenv.Read(path)
		if err != nil {
			if !os.IsNotExist(err) {
				return err
			}
			env = grubenv.NewSlots(DefaultTries)
		}
		if env[grubenv.KeyActive] == slot && env.Tries(slot) == DefaultTries && env[grubenv.KeyNext] != slot && env[grubenv.GoodKey(slot)] == "1" {
			return nil // already so: do not write the ESP at every boot
		}
		if err := env.MarkGood(slot, DefaultTries); err != nil {
			return err
		}
		return grubenv.Write(path, env)
	})
}

// withEnv mounts the ESP and runs f with the grubenv's path.
func withEnv(f func(path string) error) error {
	devs, err := blockdev.List("/sys/class/block", "/dev")
	if err != nil {
		return err
	}
	esp, err := blockdev.FindLabel(devs, "RANCHER_EFI")
	if err != nil {
		return err
	}
	dir := "/run/ros/efi"
	if err := mount.Mount(esp.Path, dir, "vfat", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "iocharset=ascii,codepage=437"); err != nil {
		return err
	}
	defer func() {
		unix.Sync()
		_ = unix.Unmount(dir, 0)
	}()
	return f(filepath.Join(dir, grubenv.Path))
}
