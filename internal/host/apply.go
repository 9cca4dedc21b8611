// Package host applies the config's keys that are about the host itself,
// not a service: host name, the login user's keys, SSH host keys, sysctl,
// kernel modules, mounts, write_files, the scripts of bootcmd and runcmd,
// the published merged config, and the rotation of the services' logs.
package host

import (
	"bufio"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rosos/ros/config"
	"github.com/rosos/ros/internal/paths"
	"github.com/rosos/ros/system/blockdev"
	"github.com/rosos/ros/system/kmod"
	"github.com/rosos/ros/system/mount"
)

// Host applies config to the node, reporting what fails to Problem (a
// user must see it) and what it did to Log.
type Host struct {
	Problem func(msg string)
	Log     *slog.Logger
}

func (h *Host) problem(format string, args ...any) {
	if h.Problem != nil {
		h.Problem(fmt.Sprintf(format, args...))
	}
}

func (h *Host) log() *slog.Logger {
	if h.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return h.Log
}

// Sysctl sets kernel parameters (net.ipv4.ip_forward ->
// /proc/sys/net/ipv4/ip_forward).
func (h *Host) Sysctl(kv map[string]string) {
	for _, k := range slices.Sorted(maps.Keys(kv)) {
		p := filepath.Join("/proc/sys", strings.ReplaceAll(k, ".", "/"))
		if err := os.WriteFile(p, []byte(kv[k]+"\n"), 0o644); err != nil {
			h.problem("rancher.sysctl.%s: %v", k, err)
			continue
		}
		h.log().Info("sysctl", "key", k, "value", kv[k])
	}
}

// Modules loads rancher.modules.
func (h *Host) Modules(mods []string) {
	if len(mods) == 0 {
		return
	}
	idx, err := kmod.OpenRunning()
	if err != nil {
		h.problem("rancher.modules: %v", err)
		return
	}
	loaded, err := idx.Load(mods...)
	if err != nil {
		h.problem("rancher.modules: %v", err)
	}
	h.log().Info("modules loaded", "modules", loaded)
}

// WriteFiles writes the write_files entries for target ("" for the host,
// else a service's name) under root ("/" for the host).
func (h *Host) WriteFiles(files []config.WriteFile, target, root string) {
	for i, f := range files {
		if f.Container != target {
			continue
		}
		if err := writeFile(root, f); err != nil {
			h.problem("write_files[%d] (%s): %v", i, f.Path, err)
			continue
		}
		h.log().Info("write_files: wrote", "path", f.Path, "container", target)
	}
}

func writeFile(root string, f config.WriteFile) error {
	b, err := config.Decode(f.Encoding, f.Content)
	if err != nil {
		return err
	}
	p := filepath.Join(root, filepath.Clean("/"+f.Path))
	mode := os.FileMode(0o644)
	if f.Permissions != 0 {
		mode = os.FileMode(f.Permissions)
	}
	uid, gid, err := owner(root, f.Owner)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	if f.Append {
		fh, err := os.OpenFile(p, os.O_APPEND|os.O_CREATE|os.O_WRONLY, mode)
		if err != nil {
			return err
		}
		_, err = fh.Write(b)
		if cerr := fh.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	} else if err := config.WriteAtomic(p, b, mode); err != nil {
		return err
	}
	if err := os.Chmod(p, mode|os.FileMode(f.Permissions)&(os.ModeSetuid|os.ModeSetgid|os.ModeSticky)); err != nil {
		return err
	}
	return os.Lchown(p, uid, gid)
}

// owner resolves "user[:group]" by number or by name, from the passwd and
// group files under root, then the console image's (where rancher is).
func owner(root, s string) (int, int, error) {
	if s == "" {
		return 0, 0, nil
	}
	u, g, hasGroup := strings.Cut(s, ":")
	roots := []string{root, filepath.Join(paths.ImagesDir, "console", "rootfs")}
	uid, ugid, err := lookupID(roots, "passwd", u)
	if err != nil {
		return 0, 0, fmt.Errorf("owner %q: %w", s, err)
	}
	gid := ugid
	if hasGroup {
		if gid, _, err = lookupID(roots, "group", g); err != nil {
			return 0, 0, fmt.Errorf("owner %q: %w", s, err)
		}
	}
	return uid, gid, nil
}

func lookupID(roots []string, file, name string) (int, int, error) {
	if n, err := strconv.Atoi(name); err == nil {
		return n, n, nil
	}
	for _, r := range roots {
		f, err := os.Open(filepath.Join(r, "etc", file))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fs := strings.Split(sc.Text(), ":")
			if len(fs) >= 3 && fs[0] == name {
				id, _ := strconv.Atoi(fs[2])
				gid := id
				if file == "passwd" && len(fs) >= 4 {
					gid, _ = strconv.Atoi(fs[3])
				}
				f.Close()
				return id, gid, nil
			}
		}
		f.Close()
	}
	return 0, 0, fmt.Errorf("no %s entry %q", map[string]string{"passwd": "user", "group": "group"}[file], name)
}

var mountFlags = map[string]uintptr{
	"ro": unix.MS_RDONLY, "nosuid": unix.MS_NOSUID, "nodev": unix.MS_NODEV, "noexec": unix.MS_NOEXEC,
	"noatime": unix.MS_NOATIME, "nodiratime": unix.MS_NODIRATIME, "relatime": unix.MS_RELATIME,
	"sync": unix.MS_SYNCHRONOUS, "rw": 0, "defaults": 0, "auto": 0, "nofail": 0,
}

// Mounts mounts the mounts entries: [device, mount point, type, options];
// the device may be LABEL=NAME, the type "auto" or empty (probed).
func (h *Host) Mounts(entries [][]string) {
	for i, e := range entries {
		if err := mountEntry(e); err != nil {
			h.problem("mounts[%d] %v: %v", i, e, err)
			continue
		}
		h.log().Info("mounted", "device", e[0], "on", e[1])
	}
}

func mountEntry(e []string) error {
	dev, dir := e[0], e[1]
	typ, opts := "", ""
	if len(e) > 2 {
		typ = e[2]
	}
	if len(e) > 3 {
		opts = e[3]
	}
	if label, ok := strings.CutPrefix(dev, "LABEL="); ok {
		d, err := blockdev.WaitLabel("/sys/class/block", "/dev", label, 10*time.Second)
		if err != nil {
			return err
		}
		dev = d.Path
	}
	if typ == "" || typ == "auto" {
		t, _, err := blockdev.ProbeFile(dev)
		if err != nil {
			return fmt.Errorf("%s: file system type: %w", dev, err)
		}
		typ = t
	}
	var flags uintptr
	var data []string
	for _, o := range strings.Split(opts, ",") {
		if o == "" {
			continue
		}
		if f, ok := mountFlags[o]; ok {
			flags |= f
		} else {
			data = append(data, o)
		}
	}
	if mount.IsMounted(dir) {
		return nil
	}
	return mount.Mount(dev, dir, typ, flags, strings.Join(data, ","))
}

// HostKeys writes rancher.ssh.keys (host keys by file name) where
// the console's sshd reads them.
func (h *Host) HostKeys(keys map[string]string) {
	for _, name := range slices.Sorted(maps.Keys(keys)) {
		if strings.ContainsAny(name, "/") || !strings.HasPrefix(name, "ssh_host_") {
			h.problem("rancher.ssh.keys.%s: want a host key file name such as ssh_host_ed25519_key", name)
			continue
		}
		mode := os.FileMode(0o600)
		if strings.HasSuffix(name, ".pub") {
			mode = 0o644
		}
		if err := config.WriteAtomic(filepath.Join(paths.SSHHostKeys, name), []byte(strings.TrimSpace(keys[name])+"\n"), mode); err != nil {
			h.problem("rancher.ssh.keys.%s: %v", name, err)
		}
	}
}

// Script renders commands (bootcmd, runcmd) as a shell script: a string
// as it is, a list quoted. Empty entries are skipped.
func Script(cmds []config.Command) string {
	var b strings.Builder
	for _, c := range cmds {
		if c.Empty() {
			continue
		}
		if len(c.Args) > 0 {
			q := make([]string, len(c.Args))
			for i, a := range c.Args {
				q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
			}
			b.WriteString(strings.Join(q, " "))
		} else {
			b.WriteString(c.Shell)
		}
		b.WriteString("\n")
	}
	return b.String()
}

func ShellCommands(ss []string) []config.Command {
	out := make([]config.Command, len(ss))
	for i, s := range ss {
		out[i] = config.Command{Shell: s}
	}
	return out
}

// StartScripts are RancherOS v1's start scripts, run after runcmd when
// they are executable.
var StartScripts = []string{"/opt/rancher/bin/start.sh", "/etc/rc.local", "/var/lib/rancher/conf/cloud-config-script"}

// RuncmdScript is the end-of-boot script: rancher.network.post_cmds, runcmd, the user-data scripts
// not yet run for their instance, and v1's start scripts.
func RuncmdScript(cfg config.Config, pending []string) string {
	var b strings.Builder
	b.WriteString(Script(ShellCommands(cfg.Rancher.Network.PostCmds)))
	b.WriteString(Script(cfg.Runcmd))
	for _, p := range pending {
		fmt.Fprintf(&b, "%s || echo \"user-data script %s failed: $?\"\n", p, filepath.Base(p))
	}
	for _, p := range StartScripts {
		fmt.Fprintf(&b, "if [ -x %s ]; then %s || echo \"%s failed: $?\"; fi\n", p, p, p)
	}
	return b.String()
}
