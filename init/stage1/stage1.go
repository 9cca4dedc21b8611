package stage1

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rosos/ros/init/bootlog"
	"github.com/rosos/ros/internal/paths"
	"github.com/rosos/ros/system/blockdev"
	"github.com/rosos/ros/system/kmod"
	"github.com/rosos/ros/system/mount"
)

const (
	// ModuleList names, one a line, the modules the initramfs loads.
	ModuleList = "/etc/ros/initrd-modules"
	newRoot    = "/sysroot"
	stateDir   = paths.StateDir        // RANCHER_STATE, read-only
	lowerDir   = "/run/ros/slot"       // the slot's squashfs
	persistDir = "/run/ros/persistent" // RANCHER_PERSISTENT
	diskWait   = 30 * time.Second
)

// Run is the initramfs's /init. It returns only on failure; on success it
// execs /sbin/init in the new root.
func Run() error {
	log := bootlog.New(os.Stdout, "stage1")
	step := func(name string, f func() error) error {
		log.Stage(name)
		if err := f(); err != nil {
			return fmt.Errorf("stage 1 %q: %w", name, err)
		}
		return nil
	}
	var plan Plan
	steps := []struct {
		name string
		f    func() error
	}{
		{"mount /proc, /sys, /dev, /run", mountPseudo},
		{"read the kernel command line", func() error {
			b, err := os.ReadFile("/proc/cmdline")
			if err != nil {
				return err
			}
			plan, err = ParseCmdline(string(b))
			return err
		}},
		{"load kernel modules", func() error { return loadModules(log, plan.Modules) }},
		{"mount the state partition and the slot", func() error { return mountSlot(log, plan) }},
		{"prepare the writable root", func() error { return prepareRoot(log, plan) }},
	}
	for _, s := range steps {
		if err := step(s.name, s.f); err != nil {
			return err
		}
	}
	if plan.Break {
		return fmt.Errorf("rd.break on the kernel command line: stopping before switch_root")
	}
	if err := step("switch to the root and exec /sbin/init", func() error {
		// /run moves to the new root with switch_root: the timeline goes
		// with it.
		if err := log.Save(paths.Timeline); err != nil {
			return err
		}
		if err := mount.SwitchRoot(newRoot, "/dev", "/proc", "/sys", "/run"); err != nil {
			return err
		}
		return unix.Exec("/sbin/init", []string{"/sbin/init"}, os.Environ())
	}); err != nil {
		return err
	}
	return nil
}

func mountPseudo() error {
	for _, m := range []struct{ src, dst, typ, data string }{
		{"proc", "/proc", "proc", ""},
		{"sysfs", "/sys", "sysfs", ""},
		{"devtmpfs", "/dev", "devtmpfs", "mode=0755"},
		{"tmpfs", "/run", "tmpfs", "mode=0755"},
	} {
		if err := mount.Mount(m.src, m.dst, m.typ, unix.MS_NOSUID, m.data); err != nil {
			return err
		}
	}
	return nil
}

func loadModules(log *bootlog.Log, extra []string) error {
	release, err := kmod.Release()
	if err != nil {
		return err
	}
	idx, err := kmod.Open(filepath.Join("/lib/modules", release))
	if err != nil {
		return err
	}
	names, err := kmod.ReadList(ModuleList)
	if err != nil {
		return err
	}
	loaded, err := idx.Load(append(names, extra...)...)
	log.Printf("loaded %d modules for kernel %s", len(loaded), release)
	if err != nil {
		// Not fatal by itself: if a disk driver is missing, finding the
		// partitions fails next and says which label it did not see.
		log.Printf("warning: %v", err)
	}
	return nil
}

func mountSlot(log *bootlog.Log, plan Plan) error {
	state, err := blockdev.WaitLabel("/sys/class/block", "/dev", plan.State, diskWait)
	if err != nil {
		return err
	}
	// ext4 on a disk; ISO 9660 on a live boot from the ISO.
	if err := mount.Mount(state.Path, stateDir, state.Type, unix.MS_RDONLY|unix.MS_NODEV|unix.MS_NOSUID, ""); err != nil {
		return err
	}
	image := filepath.Join(stateDir, plan.Slot)
	fi, err := os.Stat(image)
	if err != nil {
		return fmt.Errorf("slot %s: %w", plan.Slot, err)
	}
	if fi.IsDir() {
		// A slot written by `ros os upgrade`: the image's tree itself,
		// bound read-only.
		if err := mount.Bind(image, lowerDir); err != nil {
			return fmt.Errorf("slot %s: %w", plan.Slot, err)
		}
		if err := unix.Mount("", lowerDir, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NODEV, ""); err != nil {
			return fmt.Errorf("slot %s: read-only: %w", plan.Slot, err)
		}
		log.Printf("slot %s: directory %s, bound read-only", plan.Slot, image)
		return nil
	}
	loop, dev, err := blockdev.AttachLoop(image, true)
	if err != nil {
		return err
	}
	defer dev.Close() // the mount holds the device from here on
	if err := mount.Mount(loop, lowerDir, "squashfs", unix.MS_RDONLY|unix.MS_NODEV, ""); err != nil {
		return fmt.Errorf("slot %s (%s on %s): %w", plan.Slot, image, loop, err)
	}
	log.Printf("slot %s: %s on %s, mounted read-only", plan.Slot, image, loop)
	return nil
}

// prepareRoot lays a tmpfs over the read-only slot (an overlay, so /etc and
// the like can be written; those writes last until the next boot) and binds
// the persistent directories into it.
func prepareRoot(log *bootlog.Log, plan Plan) error {
	if err := mount.Mount("tmpfs", "/run/ros/overlay", "tmpfs", unix.MS_NODEV|unix.MS_NOSUID, "mode=0755"); err != nil {
		return err
	}
	for _, d := range []string{"/run/ros/overlay/upper", "/run/ros/overlay/work"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	opts := "lowerdir=" + lowerDir + ",upperdir=/run/ros/overlay/upper,workdir=/run/ros/overlay/work"
	if err := mount.Mount("overlay", newRoot, "overlay", 0, opts); err != nil {
		return err
	}
	base := "/run/ros/volatile"
	if plan.Persistent != "" {
		dev, err := blockdev.WaitLabel("/sys/class/block", "/dev", plan.Persistent, diskWait)
		if err != nil {
			return fmt.Errorf("persistent storage: %w", err)
		}
		if err := mount.Mount(dev.Path, persistDir, "ext4", unix.MS_NODEV|unix.MS_NOSUID, ""); err != nil {
			return err
		}
		base = persistDir
		log.Printf("persistent storage: %s (%s) on %s", dev.Path, dev.Label, persistDir)
		growPersistent(log, dev.Path)
	} else {
		if err := os.MkdirAll(base, 0o755); err != nil {
			return err
		}
		log.Printf("no persistent storage: changes last until the next boot")
	}
	for _, d := range PersistentDirs {
		if err := mount.Bind(filepath.Join(base, d), filepath.Join(newRoot, d)); err != nil {
			return err
		}
	}
	return nil
}

// Fail prints why stage 1 failed and reboots after a pause, so a machine with
// another good slot gets to it (GRUB has already counted this try).
func Fail(err error) {
	fmt.Fprintf(os.Stdout, "ros: stage 1 failed: %v\n", err)
	fmt.Fprintf(os.Stdout, "ros: rebooting in 10 seconds\n")
	time.Sleep(10 * time.Second)
	unix.Sync()
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART); err != nil {
		fmt.Fprintf(os.Stdout, "ros: reboot: %v\n", err)
	}
	select {} // never return from PID 1: the kernel would panic
}

// growMin is the least a grow of the persistent partition must gain.
const growMin = 64 << 20

// growPersistent grows the persistent partition and its file system to the
// end of the disk (an image made for a small disk written to a bigger
// one). It says what it did; a failure is reported and the boot goes on
// with the size there is.
func growPersistent(log *bootlog.Log, dev string) {
	r, err := blockdev.GrowPersistent(dev, persistDir, growMin)
	if err != nil {
		log.Printf("persistent storage: not grown: %v", err)
		return
	}
	if r.GrewTable || r.GrewFS {
		log.Printf("persistent storage: grown to the end of the disk, %d MiB -> %d MiB", r.FromBytes>>20, r.ToBytes>>20)
	}
}
