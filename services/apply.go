package services

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rosos/ros/config"
	"github.com/rosos/ros/system/blockdev"
	"github.com/rosos/ros/system/kmod"
	"github.com/rosos/ros/system/mount"
)

// definitions turns a config into the services to run: rancher.services,
// the services turned on by rancher.services_include, and what other keys
// say of the built-in ones (rancher.docker for docker, rancher.ssh and the
// proxies for the console). With strict, an included service that fails to
// parse is an error; otherwise it is reported and left out.
func (m *Manager) definitions(ctx context.Context, cfg config.Config, strict bool) ([]Service, map[string]string, error) {
	env := serviceEnv(cfg)
	defs, err := Parse(ctx, cfg.Rancher.Services, env)
	if err != nil {
		return nil, nil, err
	}
	sources := map[string]string{}
	inc, err := m.included(ctx, cfg, env, sources, strict)
	if err != nil {
		return nil, nil, err
	}
	defs = append(defs, inc...)
	for i := range defs {
		if err := m.adjust(&defs[i], cfg); err != nil {
			return nil, nil, err
		}
	}
	return defs, sources, nil
}

// serviceEnv is what ${VAR} in service definitions may use.
func serviceEnv(cfg config.Config) map[string]string {
	env := map[string]string{"ROS_VERSION": osVersion()}
	for k, v := range cfg.Rancher.Environment {
		env[k] = v
	}
	return env
}

// adjust applies rancher.docker, rancher.ssh and the proxy settings to the
// built-in services they are about, and gives the service a new hash when
// they changed it (so a running one is replaced).
func (m *Manager) adjust(s *Service, cfg config.Config) error {
	net := cfg.Rancher.Network
	proxy := func() {
		for k, v := range map[string]string{"HTTP_PROXY": net.HTTPProxy, "HTTPS_PROXY": net.HTTPSProxy, "NO_PROXY": net.NoProxy} {
			if v != "" {
				s.Env = append(s.Env, k+"="+v, strings.ToLower(k)+"="+v)
			}
		}
	}
	changed := false
	switch s.Name {
	case "docker":
		d := cfg.Rancher.Docker
		var flags []string
		if d.StorageDriver != "" {
			flags = append(flags, "--storage-driver="+d.StorageDriver)
		}
		if d.RegistryMirror != "" {
			flags = append(flags, "--registry-mirror="+d.RegistryMirror)
		}
		for _, r := range d.InsecureRegistry {
			flags = append(flags, "--insecure-registry="+r)
		}
		if d.LogDriver != "" {
			flags = append(flags, "--log-driver="+d.LogDriver)
		}
		for _, k := range slices.Sorted(maps.Keys(d.LogOpts)) {
			flags = append(flags, "--log-opt="+k+"="+d.LogOpts[k])
		}
		flags = append(flags, d.ExtraArgs...)
		if len(d.Args) > 0 || len(flags) > 0 {
			base := d.Args
			if len(base) == 0 {
				base = s.Command
				if len(base) == 0 && len(s.Entrypoint) == 0 {
					if p, ok := m.preloadedImage(s.Image); ok {
						base = p.Args(nil, nil)
					}
				}
			}
			s.Command = append(append([]string{}, base...), flags...)
			if len(d.Args) > 0 {
				s.Entrypoint = nil
			}
			changed = true
		}
		s.Env = append(s.Env, d.Environment...)
		proxy()
		changed = changed || len(d.Environment) > 0 || net.HTTPProxy != "" || net.HTTPSProxy != "" || net.NoProxy != ""
	case "console":
		if p := cfg.Rancher.SSH.Port; p != 0 {
			s.Env = append(s.Env, "ROS_SSH_PORT="+strconv.Itoa(p))
			changed = true
		}
		if a := cfg.Rancher.SSH.ListenAddress; a != "" {
			s.Env = append(s.Env, "ROS_SSH_LISTEN="+a)
			changed = true
		}
		proxy()
		changed = changed || net.HTTPProxy != "" || net.HTTPSProxy != "" || net.NoProxy != ""
	}
	if changed {
		s.Hash = rehash(*s)
	}
	return nil
}

func (m *Manager) preloadedImage(ref string) (Preloaded, bool) {
	if m.Runner == nil {
		return Preloaded{}, false
	}
	return m.Runner.preloaded(ref)
}

// applySysctl sets kernel parameters (net.ipv4.ip_forward ->
// /proc/sys/net/ipv4/ip_forward).
func (m *Manager) applySysctl(kv map[string]string) {
	for _, k := range slices.Sorted(maps.Keys(kv)) {
		p := filepath.Join("/proc/sys", strings.ReplaceAll(k, ".", "/"))
		if err := os.WriteFile(p, []byte(kv[k]+"\n"), 0o644); err != nil {
			m.problem("rancher.sysctl.%s: %v", k, err)
			continue
		}
		m.logf("sysctl %s = %s", k, kv[k])
	}
}

// loadModules loads rancher.modules.
func (m *Manager) loadModules(mods []string) {
	if len(mods) == 0 {
		return
	}
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		m.problem("rancher.modules: %v", err)
		return
	}
	idx, err := kmod.Open(filepath.Join("/lib/modules", unix.ByteSliceToString(uts.Release[:])))
	if err != nil {
		m.problem("rancher.modules: %v", err)
		return
	}
	loaded, err := idx.Load(mods...)
	if err != nil {
		m.problem("rancher.modules: %v", err)
	}
	m.logf("modules loaded: %v", loaded)
}

// writeFiles writes the write_files entries for target ("" for the host,
// else a service's name) under root ("/" for the host).
func (m *Manager) writeFiles(files []config.WriteFile, target, root string) {
	for i, f := range files {
		if f.Container != target {
			continue
		}
		if err := writeFile(root, f); err != nil {
			m.problem("write_files[%d] (%s): %v", i, f.Path, err)
			continue
		}
		m.logf("write_files: wrote %s%s", f.Path, map[bool]string{true: " in " + target, false: ""}[target != ""])
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
	roots := []string{root, filepath.Join(ImagesDir, "console", "rootfs")}
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

// doMounts mounts the mounts entries: [device, mount point, type, options];
// the device may be LABEL=NAME, the type "auto" or empty (probed).
func (m *Manager) doMounts(entries [][]string) {
	for i, e := range entries {
		if err := mountEntry(e); err != nil {
			m.problem("mounts[%d] %v: %v", i, e, err)
			continue
		}
		m.logf("mounted %s on %s", e[0], e[1])
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

// writeHostKeys writes rancher.ssh.keys (host keys by file name) where
// the console's sshd reads them.
func (m *Manager) writeHostKeys(keys map[string]string) {
	for _, name := range slices.Sorted(maps.Keys(keys)) {
		if strings.ContainsAny(name, "/") || !strings.HasPrefix(name, "ssh_host_") {
			m.problem("rancher.ssh.keys.%s: want a host key file name such as ssh_host_ed25519_key", name)
			continue
		}
		mode := os.FileMode(0o600)
		if strings.HasSuffix(name, ".pub") {
			mode = 0o644
		}
		if err := config.WriteAtomic(filepath.Join("/var/lib/rancher/ssh", name), []byte(strings.TrimSpace(keys[name])+"\n"), mode); err != nil {
			m.problem("rancher.ssh.keys.%s: %v", name, err)
		}
	}
}

// script renders commands (bootcmd, runcmd) as a shell script: a string
// as it is, a list quoted. Empty entries are skipped.
func script(cmds []config.Command) string {
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

func shellCommands(ss []string) []config.Command {
	out := make([]config.Command, len(ss))
	for i, s := range ss {
		out[i] = config.Command{Shell: s}
	}
	return out
}

// startScripts are RancherOS v1's start scripts, run after runcmd when
// they are executable.
var startScripts = []string{"/opt/rancher/bin/start.sh", "/etc/rc.local", "/var/lib/rancher/conf/cloud-config-script"}

// runScript runs a shell script to completion in a one-shot container of
// the console's image with the console's host access (privileged, host
// namespaces, /home, /opt, /var/lib/rancher ...): the node's root has no
// shell of its own. Output goes to /var/log/system/NAME.log.
func (m *Manager) runScript(ctx context.Context, name, body string, defs []Service) (uint32, error) {
	var console *Service
	for i := range defs {
		if defs[i].Name == "console" {
			console = &defs[i]
		}
	}
	if console == nil {
		return 0, errors.New("no console service to run commands in")
	}
	s := Service{
		Name: name, Image: console.Image, Entrypoint: []string{"/bin/sh", "-c"}, Command: []string{body},
		Env: console.Env, Binds: console.Binds, Privileged: true, HostNetwork: true, HostPID: true,
		HostIPC: true, HostUTS: true, Restart: "no", Labels: map[string]string{LabelScope: "system"},
	}
	if _, err := os.Stat("/etc/rc.local"); err == nil {
		s.Binds = append(s.Binds, Bind{Source: "/etc/rc.local", Target: "/etc/rc.local", ReadOnly: true})
	}
	s.Hash = fmt.Sprintf("run-%d", time.Now().UnixNano())
	t, err := m.Runner.Start(ctx, s)
	if err != nil {
		return 0, err
	}
	defer func() {
		if err := m.Runner.Remove(context.WithoutCancel(ctx), name); err != nil {
			m.logf("%s: remove: %v", name, err)
		}
	}()
	select {
	case st := <-t.Wait():
		return st.ExitCode(), nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// runcmdScript is the end-of-boot script: rancher.network.post_cmds, runcmd, the user-data scripts
// not yet run for their instance, and v1's start scripts.
func runcmdScript(cfg config.Config, pending []string) string {
	var b strings.Builder
	b.WriteString(script(shellCommands(cfg.Rancher.Network.PostCmds)))
	b.WriteString(script(cfg.Runcmd))
	for _, p := range pending {
		fmt.Fprintf(&b, "%s || echo \"user-data script %s failed: $?\"\n", p, filepath.Base(p))
	}
	for _, p := range startScripts {
		fmt.Fprintf(&b, "if [ -x %s ]; then %s || echo \"%s failed: $?\"; fi\n", p, p, p)
	}
	return b.String()
}
