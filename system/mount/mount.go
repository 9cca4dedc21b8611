// Package mount wraps the mount system calls the boot uses, with errors that
// say what was being mounted where, and the switch from the initramfs to the
// real root.
package mount

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Mount mounts source on target (created if missing) with fstype, flags and
// data, as mount(2) does.
func Mount(source, target, fstype string, flags uintptr, data string) error {
	if err := os.MkdirAll(target, 0o755); err != nil {
		return fmt.Errorf("mount %s on %s: %w", source, target, err)
	}
	if err := unix.Mount(source, target, fstype, flags, data); err != nil {
		return fmt.Errorf("mount %s (%s) on %s: %w", source, fstype, target, err)
	}
	return nil
}

// Bind bind-mounts source on target, creating both as directories if missing.
func Bind(source, target string) error {
	if err := os.MkdirAll(source, 0o755); err != nil {
		return fmt.Errorf("bind %s on %s: %w", source, target, err)
	}
	return Mount(source, target, "", unix.MS_BIND, "")
}

// Move moves the mount at source to target.
func Move(source, target string) error {
	return Mount(source, target, "", unix.MS_MOVE, "")
}

// IsMounted reports whether path is a mount point, by /proc/self/mountinfo.
func IsMounted(path string) bool {
	ms, err := List()
	if err != nil {
		return false
	}
	for _, m := range ms {
		if m.Target == path {
			return true
		}
	}
	return false
}

// Info is one line of /proc/self/mountinfo.
type Info struct {
	Target string
	FSType string
	Source string
}

// List returns the mounts in mount order.
func List() ([]Info, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseMountinfo(bufio.NewScanner(f))
}

func parseMountinfo(s *bufio.Scanner) ([]Info, error) {
	var out []Info
	for s.Scan() {
		f := strings.Fields(s.Text())
		// id parent maj:min root target options [optional...] - fstype source superopts
		sep := -1
		for i, x := range f {
			if x == "-" {
				sep = i
				break
			}
		}
		if len(f) < 5 || sep < 0 || sep+2 >= len(f) {
			continue
		}
		out = append(out, Info{Target: unescape(f[4]), FSType: f[sep+1], Source: unescape(f[sep+2])})
	}
	return out, s.Err()
}

// unescape undoes the octal escapes mountinfo uses for spaces and the like.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var c int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &c); err == nil {
				b.WriteByte(byte(c))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// SwitchRoot makes newRoot the root: it moves the pseudo file systems there,
// frees the initramfs (rootfs cannot be unmounted, only emptied), moves
// newRoot onto / and chroots into it. The caller then execs the new init.
func SwitchRoot(newRoot string, keep ...string) error {
	for _, m := range keep {
		if err := Move(m, filepath.Join(newRoot, m)); err != nil {
			return fmt.Errorf("switch root: %w", err)
		}
	}
	if err := unix.Chdir(newRoot); err != nil {
		return fmt.Errorf("switch root: chdir %s: %w", newRoot, err)
	}
	var root unix.Stat_t
	if err := unix.Stat("/", &root); err != nil {
		return fmt.Errorf("switch root: %w", err)
	}
	if err := emptyDir("/", uint64(root.Dev)); err != nil {
		return fmt.Errorf("switch root: free the initramfs: %w", err)
	}
	if err := unix.Mount(".", "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("switch root: move %s to /: %w", newRoot, err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("switch root: chroot: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("switch root: chdir /: %w", err)
	}
	return nil
}

// emptyDir removes everything below dir that lives on device dev, without
// crossing into other mounts (newRoot and the moved mounts among them).
func emptyDir(dir string, dev uint64) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			errs = append(errs, err)
			continue
		}
		if uint64(st.Dev) != dev {
			continue
		}
		if e.IsDir() {
			if err := emptyDir(p, dev); err != nil {
				errs = append(errs, err)
			}
			if err := unix.Rmdir(p); err != nil && !errors.Is(err, unix.EBUSY) {
				errs = append(errs, fmt.Errorf("rmdir %s: %w", p, err))
			}
			continue
		}
		if err := unix.Unlink(p); err != nil {
			errs = append(errs, fmt.Errorf("unlink %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}
