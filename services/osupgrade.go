package services

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rosos/ros/config"
	"github.com/rosos/ros/system/blockdev"
	"github.com/rosos/ros/system/grubenv"
	"github.com/rosos/ros/system/mount"
	"github.com/rosos/ros/system/osimage"
)

// Where the slots are: stage 1 mounts RANCHER_STATE read-only here (it
// moves with /run to the root); an upgrade remounts it writable for the
// time it writes.
const (
	StateDir = "/run/ros/state"
	espDir   = "/run/ros/efi-os" // not PID 1's /run/ros/efi: both may be mounted at once
	// SlotTries is how many boots a new slot gets before GRUB gives up on it.
	SlotTries = 3
)

func goodKey(slot string) string { return grubenv.GoodKey(slot) }

// SlotInfo is one slot, for `ros os list`.
type SlotInfo struct {
	Slot    string `json:"slot"`
	Present bool   `json:"present"`
	Format  string `json:"format,omitempty"` // squashfs or directory
	Version string `json:"version,omitempty"`
	Running bool   `json:"running"`
	Active  bool   `json:"active"` // booted by default: the last marked good
	Next    bool   `json:"next"`   // tried at the next boot
	Good    bool   `json:"good"`   // a boot of it was marked good
	Tries   int    `json:"tries"`
	Failed  bool   `json:"failed"` // the last slot whose tries ran out
}

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
func withESP(f func(envPath string) error) error { return grubenv.OnESP(espDir, f) }

// changeEnv reads the grubenv, changes it with f and writes it back,
// under the lock PID 1 takes too (grubenv.Update).
func changeEnv(f func(grubenv.Env) error) error {
	return grubenv.Update(espDir, func(env grubenv.Env, exists bool) (bool, error) {
		if !exists {
			return false, fmt.Errorf("boot environment %s: no such file", grubenv.Path)
		}
		return true, f(env)
	})
}

// ListSlots describes both slots.
func ListSlots() ([]SlotInfo, error) {
	var env grubenv.Env
	if err := withESP(func(p string) error {
		var err error
		env, err = grubenv.Read(p)
		return err
	}); err != nil {
		return nil, fmt.Errorf("boot environment: %w", err)
	}
	running := RunningSlot()
	var out []SlotInfo
	for _, s := range grubenv.Slots {
		si := SlotInfo{Slot: s, Running: s == running, Active: env[grubenv.KeyActive] == s, Next: env[grubenv.KeyNext] == s,
			Tries: env.Tries(s), Failed: env[grubenv.KeyFailed] == s}
		si.Good = env[goodKey(s)] == "1" || (si.Active && env[goodKey(s)] == "")
		p := filepath.Join(StateDir, s)
		if fi, err := os.Stat(p); err == nil {
			si.Present = true
			if fi.IsDir() {
				si.Format = "directory"
				si.Version = releaseVersion(filepath.Join(p, "etc/os-release"))
			} else {
				si.Format = "squashfs"
				if si.Running {
					si.Version = osVersion()
				} else {
					si.Version = squashfsVersion(p)
				}
			}
		}
		out = append(out, si)
	}
	return out, nil
}

func releaseVersion(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VERSION_ID="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return ""
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
	defer unix.Unmount(dir, unix.MNT_DETACH)
	return releaseVersion(filepath.Join(dir, "etc/os-release"))
}

// UpgradeRequest is POST /v1/os/upgrade.
type UpgradeRequest struct {
	File      string `json:"file,omitempty"`  // an OCI image archive: a file or a block device
	Image     string `json:"image,omitempty"` // or an image in a registry, pulled through system containerd
	PlainHTTP bool   `json:"plain_http,omitempty"`
	Force     bool   `json:"force,omitempty"`
	NoReboot  bool   `json:"no_reboot,omitempty"`
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
// GRUB try it next, SlotTries times. The image is checked whole first (its
// signature when keys are set, every layer's digest and entries): a
// refused image changes nothing. The active slot and the boot environment
// are not touched until the new slot is whole on disk: it is unpacked into
// SLOT.new, synced, and renamed. Progress lines go to out.
func Upgrade(ctx context.Context, req UpgradeRequest, keys []string, out io.Writer) (string, error) {
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
	return upgradeFrom(ctx, a, req.File, req, Trust{Keys: keys, Signatures: a.Signatures}, out)
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

// upgradeFrom writes the opened OS image a (from source: an archive's path
// or an image reference) into the passive slot, as Upgrade says.
func upgradeFrom(ctx context.Context, a *osimage.Archive, source string, req UpgradeRequest, trust Trust, out io.Writer) (string, error) {
	osMu.Lock()
	defer osMu.Unlock()
	say := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	running := RunningSlot()
	if !grubenv.ValidSlot(running) {
		return "", errors.New("this boot has no ros.slot: not booted from a slot (a live boot?); use ros install")
	}
	passive := grubenv.Other(running)
	say("image %s: version %s, %d layers, %d MiB (manifest %s)", source, a.Version(), len(a.Layers), a.Size()>>20, a.Digest)
	if a.Version() == osVersion() && !req.Force {
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
	if err := unix.Mount("", StateDir, "", unix.MS_REMOUNT|unix.MS_NODEV|unix.MS_NOSUID, ""); err != nil {
		return "", fmt.Errorf("make %s writable: %w", StateDir, err)
	}
	defer func() {
		unix.Sync()
		_ = unix.Mount("", StateDir, "", unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NODEV|unix.MS_NOSUID, "")
	}()
	dst := filepath.Join(StateDir, passive)
	tmp, old := dst+".new", dst+".old"
	for _, p := range []string{tmp, old, dst} {
		if err := os.RemoveAll(p); err != nil {
			return "", fmt.Errorf("clear slot %s: %w", passive, err)
		}
	}
	var st unix.Statfs_t
	if err := unix.Statfs(StateDir, &st); err == nil {
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
	if err := syncFS(StateDir); err != nil {
		return "", fmt.Errorf("sync slot %s: %w", passive, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return "", err
	}
	if err := syncFS(StateDir); err != nil {
		return "", err
	}
	say("slot %s written in %s", passive, time.Since(start).Round(time.Second))
	if err := changeEnv(func(env grubenv.Env) error { return env.TryNext(passive, SlotTries) }); err != nil {
		return "", fmt.Errorf("boot environment: %w", err)
	}
	say("slot %s (version %s) will be tried at the next boot, up to %d times; slot %s stays the fallback", passive, a.Version(), SlotTries, running)
	return passive, nil
}

func syncFS(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
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
	if _, err := os.Stat(filepath.Join(StateDir, other)); err != nil {
		return "", fmt.Errorf("slot %s is empty: nothing to roll back to", other)
	}
	err := changeEnv(func(env grubenv.Env) error {
		if env[goodKey(other)] == "0" {
			return fmt.Errorf("slot %s never booted well (its last boot was not marked good): refusing to roll back to it", other)
		}
		return env.TryNext(other, SlotTries)
	})
	return other, err
}

// OS API handlers.

func (a *API) osList(w http.ResponseWriter, _ *http.Request) {
	slots, err := ListSlots()
	if err != nil {
		fail(w, err)
		return
	}
	reply(w, http.StatusOK, slots)
}

// flushWriter sends each write to the client at once.
type flushWriter struct {
	w http.ResponseWriter
	f http.Flusher
}

func (fw flushWriter) Write(p []byte) (int, error) {
	n, err := fw.w.Write(p)
	fw.f.Flush()
	return n, err
}

// streamOp runs op, sending its progress lines as they come; the last line
// is a JSON object with "ok" or "error". On success, it reboots unless
// noReboot.
func streamOp(w http.ResponseWriter, noReboot bool, op func(out io.Writer) (string, error)) {
	fl, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusOK)
	out := flushWriter{w, fl}
	res, err := op(out)
	if err != nil {
		_ = json.NewEncoder(out).Encode(map[string]string{"error": err.Error()})
		return
	}
	_ = json.NewEncoder(out).Encode(map[string]string{"ok": res})
	if !noReboot {
		go rebootSoon()
	}
}

func (a *API) osUpgrade(w http.ResponseWriter, r *http.Request) {
	var req UpgradeRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		fail(w, fmt.Errorf("request: %w", err))
		return
	}
	streamOp(w, req.NoReboot, func(out io.Writer) (string, error) {
		ctx := context.WithoutCancel(r.Context())
		var cfg config.Config
		if a.Node != nil {
			cfg = a.Node.Config()
		}
		if req.File == "" && req.Image == "" {
			req.Image = cfg.Rancher.Upgrade.Image // rancher.upgrade.image, as in v1
		}
		keys := cfg.Rancher.Upgrade.PublicKeys
		if (req.File == "") == (req.Image == "") {
			return "", fmt.Errorf("give the OS image as --file ARCHIVE or --image REF (one of them)")
		}
		if req.Image != "" {
			img, sigs, cleanup, err := pullImage(ctx, a.M.Runner.Client, req.Image, req.PlainHTTP, a.M.Runner.Credentials, out)
			if err != nil {
				return "", err
			}
			defer cleanup()
			return upgradeFrom(ctx, img, req.Image, req, Trust{Keys: keys, Signatures: sigs}, out)
		}
		return Upgrade(ctx, req, keys, out)
	})
}

func (a *API) osRollback(w http.ResponseWriter, r *http.Request) {
	var req struct {
		NoReboot bool `json:"no_reboot"`
	}
	_ = json.NewDecoder(r.Body).Decode(&req)
	slot, err := Rollback()
	if err != nil {
		fail(w, err)
		return
	}
	reply(w, http.StatusOK, map[string]string{"ok": slot})
	if !req.NoReboot {
		go rebootSoon()
	}
}

// rebootSoon asks PID 1 for a clean reboot (SIGTERM), after the reply went.
func rebootSoon() {
	time.Sleep(time.Second)
	_ = unix.Kill(1, unix.SIGTERM)
}

// ReadStream reads an upgrade's progress lines, printing them, and returns
// the result of its last line.
func ReadStream(r io.Reader, out io.Writer) error {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "{") {
			var res map[string]string
			if json.Unmarshal([]byte(line), &res) == nil {
				if e := res["error"]; e != "" {
					return errors.New(e)
				}
				return nil
			}
		}
		fmt.Fprintln(out, line)
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return errors.New("the service manager ended the upgrade without a result")
}
