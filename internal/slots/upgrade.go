// Package slots is the OS image's lifecycle on the node: the two slots of
// RANCHER_STATE and the GRUB environment that picks one. It lists them,
// writes an upgrade into the passive slot (checked whole first), rolls
// back, and installs the OS to a disk.
package slots

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rosos/ros/client"
	"github.com/rosos/ros/internal/paths"
	"github.com/rosos/ros/system/blockdev"
	"github.com/rosos/ros/system/grubenv"
	"github.com/rosos/ros/system/mount"
	"github.com/rosos/ros/system/osimage"
)

func goodKey(slot string) string { return grubenv.GoodKey(slot) }

// RunningSlot is the slot this boot came from (ros.slot=).
func RunningSlot() string {
	b, _ := os.ReadFile("/proc/cmdline")
	for _, f := range strings.Fields(string(b)) {
		if v, ok := strings.CutPrefix(f, "ros.slot="); ok {
			return v
		}
	}
	return ""
}

// osMu keeps upgrades and rollbacks one at a time.
var osMu sync.Mutex

// withESP mounts the ESP, runs f with the grubenv path, and unmounts.
func withESP(f func(envPath string) error) error { return grubenv.OnESP(paths.ManagerESP, f) }

// changeEnv reads the grubenv, changes it with f and writes it back,
// under the lock PID 1 takes too (grubenv.Update).
func changeEnv(f func(grubenv.Env) error) error {
	return grubenv.Update(paths.ManagerESP, func(env grubenv.Env, exists bool) (bool, error) {
		if !exists {
			return false, fmt.Errorf("boot environment %s: no such file", grubenv.Path)
		}
		return true, f(env)
	})
}

// List describes both slots.
func List() ([]client.Slot, error) {
	var env grubenv.Env
	if err := withESP(func(p string) error {
		var err error
		env, err = grubenv.Read(p)
		return err
	}); err != nil {
		return nil, fmt.Errorf("boot environment: %w", err)
	}
	running := RunningSlot()
	var out []client.Slot
	for _, s := range grubenv.Slots {
		si := client.Slot{Slot: s, Running: s == running, Active: env[grubenv.KeyActive] == s, Next: env[grubenv.KeyNext] == s,
			Tries: env.Tries(s), Failed: env[grubenv.KeyFailed] == s}
		si.Good = env[goodKey(s)] == "1" || (si.Active && env[goodKey(s)] == "")
		p := filepath.Join(paths.StateDir, s)
		if fi, err := os.Stat(p); err == nil {
			si.Present = true
			if fi.IsDir() {
				si.Format = "directory"
				si.Version = osimage.ReleaseVersion(p)
			} else {
				si.Format = "squashfs"
				if si.Running {
					si.Version = RunningVersion()
				} else {
					si.Version = squashfsVersion(p)
				}
			}
		}
		out = append(out, si)
	}
	return out, nil
}

// squashfsVersion reads the version inside a squashfs slot image, mounting
// it read-only for the read.
func squashfsVersion(image string) string {
	loop, dev, err := blockdev.AttachLoop(image, true)
	if err != nil {
		return "?"
	}
	defer dev.Close()
	dir := "/run/ros/slot-peek"
	if err := mount.Mount(loop, dir, "squashfs", unix.MS_RDONLY|unix.MS_NODEV|unix.MS_NOSUID|unix.MS_NOEXEC, ""); err != nil {
		return "?"
	}
	defer func() { _ = unix.Unmount(dir, unix.MNT_DETACH) }()
	return osimage.ReleaseVersion(dir)
}

// archiveSize is the size of a file or a block device.
func archiveSize(f *os.File) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if fi.Mode().IsRegular() {
		return fi.Size(), nil
	}
	return f.Seek(0, io.SeekEnd)
}

// Trust is what an OS image must show before it is written: with Keys
// (rancher.upgrade.public_keys) set, a signature by one of them, read by
// Signatures.
type Trust struct {
	Keys       []string
	Signatures func() ([]osimage.Signature, error)
}

// Upgrade writes the OS image in req.File into the passive slot and makes
// GRUB try it next, paths.SlotTries times. The image is checked whole first (its
// signature when keys are set, every layer's digest and entries): a
// refused image changes nothing. The active slot and the boot environment
// are not touched until the new slot is whole on disk: it is unpacked into
// SLOT.new, synced, and renamed. Progress lines go to out.
func Upgrade(ctx context.Context, req client.UpgradeRequest, keys []string, out io.Writer) (string, error) {
	f, err := os.Open(req.File)
	if err != nil {
		return "", fmt.Errorf("image archive: %w", err)
	}
	defer f.Close()
	size, err := archiveSize(f)
	if err != nil {
		return "", fmt.Errorf("image archive %s: %w", req.File, err)
	}
	a, err := osimage.Open(f, size)
	if err != nil {
		return "", fmt.Errorf("%s: %w", req.File, err)
	}
	return UpgradeFrom(ctx, a, req.File, req, Trust{Keys: keys, Signatures: a.Signatures}, out)
}

// checkTrust refuses an image that is not signed by one of trust's keys,
// when there are keys.
func checkTrust(a *osimage.Archive, trust Trust, say func(string, ...any)) error {
	if len(trust.Keys) == 0 {
		say("signature: not checked (rancher.upgrade.public_keys is not set)")
		return nil
	}
	sigs, err := trust.Signatures()
	if err != nil {
		return fmt.Errorf("signature: %w", err)
	}
	if err := osimage.VerifySignatures(trust.Keys, a.Subjects, sigs); err != nil {
		return fmt.Errorf("signature: %w", err)
	}
	say("signature: good (a key of rancher.upgrade.public_keys signed %s)", a.Digest)
	return nil
}

// UpgradeFrom writes the opened OS image a (from source: an archive's path
// or an image reference) into the passive slot, as Upgrade says.
func UpgradeFrom(ctx context.Context, a *osimage.Archive, source string, req client.UpgradeRequest, trust Trust, out io.Writer) (string, error) {
	osMu.Lock()
	defer osMu.Unlock()
	say := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	running := RunningSlot()
	if !grubenv.ValidSlot(running) {
		return "", errors.New("this boot has no ros.slot: not booted from a slot (a live boot?); use ros install")
	}
	passive := grubenv.Other(running)
	say("image %s: version %s, %d layers, %d MiB (manifest %s)", source, a.Version(), len(a.Layers), a.Size()>>20, a.Digest)
	if a.Version() == RunningVersion() && !req.Force {
		return "", fmt.Errorf("version %s is running already (slot %s); --force writes it anyway", a.Version(), running)
	}
	refused := func(err error) error {
		return fmt.Errorf("refused, nothing written (slot %s stays the default): %w", running, err)
	}
	if err := checkTrust(a, trust, say); err != nil {
		return "", refused(err)
	}
	// Every layer read whole, its digest and entries checked, before the
	// boot environment or the passive slot is touched.
	say("checking %d MiB of layers", a.Size()>>20)
	vstart := time.Now()
	if err := a.Verify(ctx); err != nil {
		return "", refused(err)
	}
	say("layers checked in %s: digests match, no entry reaches outside the slot", time.Since(vstart).Round(time.Second))
	// The passive slot is about to be replaced: GRUB must not try it from
	// here on (it does not boot a slot without tries).
	if err := changeEnv(func(env grubenv.Env) error {
		env[grubenv.TriesKey(passive)] = "0"
		env[goodKey(passive)] = "0"
		if env[grubenv.KeyNext] == passive {
			env[grubenv.KeyNext] = ""
		}
		return nil
	}); err != nil {
		return "", fmt.Errorf("boot environment: %w", err)
	}
	if err := unix.Mount("", paths.StateDir, "", unix.MS_REMOUNT|unix.MS_NODEV|unix.MS_NOSUID, ""); err != nil {
		return "", fmt.Errorf("make %s writable: %w", paths.StateDir, err)
	}
	defer func() {
		unix.Sync()
		_ = unix.Mount("", paths.StateDir, "", unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NODEV|unix.MS_NOSUID, "")
	}()
	dst := filepath.Join(paths.StateDir, passive)
	tmp, old := dst+".new", dst+".old"
	// DST.boot: the kernel and initrd beside a squashfs slot (GRUB cannot
	// read its zstd), removed after the slot itself.
	for _, p := range []string{tmp, old, dst, dst + ".boot"} {
		if err := os.RemoveAll(p); err != nil {
			return "", fmt.Errorf("clear slot %s: %w", passive, err)
		}
	}
	var st unix.Statfs_t
	if err := unix.Statfs(paths.StateDir, &st); err == nil {
		free := int64(st.Bavail) * st.Bsize
		if need := a.Size() + a.Size()/10; free < need {
			return "", fmt.Errorf("not enough space on RANCHER_STATE for slot %s: %d MiB free, the image needs about %d MiB", passive, free>>20, need>>20)
		}
	}
	say("writing slot %s", passive)
	start := time.Now()
	lastPct := -1
	err := a.Unpack(ctx, tmp, func(done, total int64) {
		if pct := int(done * 100 / max(total, 1)); pct/10 != lastPct/10 {
			lastPct = pct
			say("  %3d%%  %d/%d MiB", pct, done>>20, total>>20)
		}
	})
	if err != nil {
		_ = os.RemoveAll(tmp)
		return "", fmt.Errorf("slot %s: %w (slot %s, running, stays the default; slot %s is left empty)", passive, err, running, passive)
	}
	for _, p := range []string{"boot/vmlinuz", "boot/initrd", "usr/sbin/init", "etc/os-release"} {
		if _, err := os.Lstat(filepath.Join(tmp, p)); err != nil {
			_ = os.RemoveAll(tmp)
			return "", fmt.Errorf("the image has no /%s: not a bootable OS image", p)
		}
	}
	if err := syncFS(paths.StateDir); err != nil {
		return "", fmt.Errorf("sync slot %s: %w", passive, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return "", err
	}
	if err := syncFS(paths.StateDir); err != nil {
		return "", err
	}
	say("slot %s written in %s", passive, time.Since(start).Round(time.Second))
	if err := changeEnv(func(env grubenv.Env) error { return env.TryNext(passive, paths.SlotTries) }); err != nil {
		return "", fmt.Errorf("boot environment: %w", err)
	}
	say("slot %s (version %s) will be tried at the next boot, up to %d times; slot %s stays the fallback", passive, a.Version(), paths.SlotTries, running)
	return passive, nil
}

func syncFS(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return err
	}
	defer func() { _ = unix.Close(fd) }()
	return unix.Syncfs(fd)
}

// Rollback makes GRUB boot the other slot next, when it holds an OS that
// booted well before.
func Rollback() (string, error) {
	osMu.Lock()
	defer osMu.Unlock()
	running := RunningSlot()
	if !grubenv.ValidSlot(running) {
		return "", errors.New("this boot has no ros.slot: not booted from a slot")
	}
	other := grubenv.Other(running)
	if _, err := os.Stat(filepath.Join(paths.StateDir, other)); err != nil {
		return "", fmt.Errorf("slot %s is empty: nothing to roll back to", other)
	}
	err := changeEnv(func(env grubenv.Env) error {
		if env[goodKey(other)] == "0" {
			return fmt.Errorf("slot %s never booted well (its last boot was not marked good): refusing to roll back to it", other)
		}
		return env.TryNext(other, paths.SlotTries)
	})
	return other, err
}

// RunningVersion is the running OS's version (its /etc/os-release), "dev"
// when it names none.
func RunningVersion() string {
	if v := osimage.ReleaseVersion("/"); v != "" {
		return v
	}
	return "dev"
}
