package services

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	"gopkg.in/yaml.v3"

	"github.com/rosos/ros/config"
	"github.com/rosos/ros/init/bootlog"
	"github.com/rosos/ros/system/blockdev"
	"github.com/rosos/ros/system/mount"
)

// Paths the service manager reads and writes on the node.
const (
	ImageConfig    = "/usr/share/ros/os-config.yml"
	ImagesDir      = "/usr/share/ros/images"
	CloudConfigDir = "/var/lib/rancher/conf/cloud-config.d"
	UserConfig     = "/var/lib/rancher/conf/cloud-config.yml"
	ContainerdSock = "/run/system-containerd/containerd.sock"
	SystemLogDir   = "/var/log/system"
	seedDir        = "/run/ros/seed"
	Timeline       = "/run/ros/boot-timeline.jsonl"
	// RootsDir holds the roots of the containers of preloaded images.
	RootsDir = "/run/ros/rootfs"
	// MergedConfig is the node's config after the layers are merged, for
	// the services that read it (network); written at each start.
	MergedConfig = "/run/ros/config.yml"
	// RancherUID is the console's login user (as in RancherOS v1).
	RancherUID = 1100
)

// Daemon is the service manager process: it gathers the config, sets the
// hostname, imports the preloaded images, starts the services, tells PID 1
// (on status) that the boot is done, and stops the services on ctx's end.
func Daemon(ctx context.Context, console, log io.Writer, status *os.File) error {
	m := &Manager{Console: console, Log: log, Timeline: bootlog.New(io.Discard, "service")}
	defer func() {
		if err := m.Timeline.Save(Timeline); err != nil {
			m.logf("boot timeline: %v", err)
		}
	}()
	readSeeds(m)
	cfg, err := loadConfig(m)
	if err != nil {
		return err
	}
	if err := setHostname(cfg.Hostname); err != nil {
		m.consolef("hostname: %v", err)
	}
	if err := publishConfig(cfg); err != nil {
		m.consolef("config: %v", err)
	}
	if err := AuthorizeKeys("/home/rancher", RancherUID, cfg.SSHAuthorizedKeys); err != nil {
		m.consolef("ssh_authorized_keys: %v", err)
	}
	client, err := Connect(ContainerdSock)
	if err != nil {
		return err
	}
	defer client.Close()
	pre, err := LoadPreloaded(ImagesDir)
	if err != nil {
		m.consolef("preloaded images: %v", err)
	}
	m.Runner = &Runner{Client: client, LogDir: SystemLogDir, Preloaded: pre, RootDir: RootsDir}
	m.logf("%d preloaded images in %s", len(pre), ImagesDir)
	env := map[string]string{"ROS_VERSION": osVersion()}
	for k, v := range cfg.Rancher.Environment {
		env[k] = v
	}
	defs, err := Parse(ctx, cfg.Rancher.Services, env)
	if err != nil {
		return err
	}
	sources := map[string]string{}
	defs = append(defs, m.included(ctx, cfg, env, sources)...)
	m.root = ctx
	// A marker in /run (gone at the next boot) tells a restart in this boot.
	const startedMarker = "/run/ros/service-manager.started"
	if _, err := os.Stat(startedMarker); err == nil {
		m.Restarted = true
		m.logf("restarted: adopting the running services")
	} else if err := os.WriteFile(startedMarker, nil, 0o644); err != nil {
		m.logf("%s: %v", startedMarker, err)
	}
	api := &API{M: m, Env: env}
	go func() {
		if err := api.Serve(ctx, Socket); err != nil {
			m.consolef("%v", err)
		}
	}()
	go m.rotateLoop(ctx, SystemLogDir, time.Minute)
	if err := m.Start(ctx, defs, sources); err != nil {
		return err
	}
	running := 0
	for _, st := range m.States() {
		if st.Status == "running" || st.Status == "exited" || st.Status == "created" {
			running++
		}
	}
	if err := m.Timeline.Save(Timeline); err != nil {
		m.logf("boot timeline: %v", err)
	}
	if status != nil {
		fmt.Fprintf(status, `{"event":"ready","services":%d}`+"\n", running)
	}
	// Healthy marks come later; keep the saved timeline current a while.
	go func() {
		for i := 0; i < 20 && ctx.Err() == nil; i++ {
			time.Sleep(15 * time.Second)
			_ = m.Timeline.Save(Timeline)
		}
	}()
	<-ctx.Done()
	m.logf("stopping services")
	m.StopAll(context.WithoutCancel(ctx))
	m.Wait()
	return nil
}

// readSeeds copies a NoCloud seed's user data into cloud-config.d. A bad
// document is reported and skipped: the node boots with what it had.
func readSeeds(m *Manager) {
	devs, err := blockdev.List("/sys/class/block", "/dev")
	if err != nil {
		m.consolef("datasource nocloud: %v", err)
		return
	}
	dev, err := blockdev.FindLabel(devs, "cidata")
	if err != nil {
		return // no seed: nothing to read
	}
	if err := mount.Mount(dev.Path, seedDir, dev.Type, unix.MS_RDONLY|unix.MS_NODEV|unix.MS_NOSUID|unix.MS_NOEXEC, ""); err != nil {
		m.consolef("datasource nocloud: %v", err)
		return
	}
	defer unix.Unmount(seedDir, 0)
	layer, err := config.NoCloud(seedDir)
	if err != nil {
		m.consolef("datasource nocloud (%s): %v; skipped, booting with the last good config", dev.Path, err)
		return
	}
	b, err := yaml.Marshal(layer.Doc)
	if err != nil {
		m.consolef("datasource nocloud: %v", err)
		return
	}
	if err := config.WriteAtomic(filepath.Join(CloudConfigDir, "nocloud.yml"), b, 0o600); err != nil {
		m.consolef("datasource nocloud: %v", err)
		return
	}
	m.logf("datasource nocloud: read %s", dev.Path)
}

func loadConfig(m *Manager) (config.Config, error) {
	img, err := config.ReadFile(ImageConfig)
	if err != nil {
		return config.Config{}, err
	}
	layers := []config.Layer{img}
	ds, errs := config.ReadDir(CloudConfigDir)
	for _, e := range errs {
		m.consolef("%v; skipped", e)
	}
	layers = append(layers, ds...)
	if user, err := config.ReadFile(UserConfig); err == nil {
		layers = append(layers, user)
	} else if !os.IsNotExist(unwrapAll(err)) {
		m.consolef("%v; skipped", err)
	}
	cfg, err := config.Merge(layers...)
	if err != nil {
		// Each layer decoded on its own; the merge cannot add a type error,
		// but if it does, fall back to the image's own config.
		m.consolef("%v; booting with the image's config", err)
		return config.Merge(img)
	}
	return cfg, nil
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}

func setHostname(name string) error {
	if name == "" {
		name = "rancher"
	}
	if err := unix.Sethostname([]byte(name)); err != nil {
		return fmt.Errorf("set %q: %w", name, err)
	}
	hosts := fmt.Sprintf("127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\tlocalhost ip6-localhost ip6-loopback\n", name)
	if err := config.WriteAtomic("/etc/hostname", []byte(name+"\n"), 0o644); err != nil {
		return err
	}
	if b, err := os.ReadFile("/etc/hosts"); err != nil || !strings.Contains(string(b), name) {
		return config.WriteAtomic("/etc/hosts", []byte(hosts), 0o644)
	}
	return nil
}

// included parses the services turned on by rancher.services_include. One
// that fails is reported and skipped.
func (m *Manager) included(ctx context.Context, cfg config.Config, env map[string]string, sources map[string]string) []Service {
	var names []string
	for n, on := range cfg.Rancher.ServicesInclude {
		if on {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	var out []Service
	for _, n := range names {
		doc, kind, err := includedDoc(n)
		if err != nil {
			m.consolef("%v; skipped", err)
			continue
		}
		defs, err := ParseComposeDoc(ctx, "services_include."+n, doc, env)
		if err != nil {
			m.consolef("%v; skipped", err)
			continue
		}
		for _, d := range defs {
			sources[d.Name] = kind
		}
		out = append(out, defs...)
	}
	return out
}

// osVersion is the running OS's version, from /etc/os-release.
func osVersion() string {
	b, _ := os.ReadFile("/etc/os-release")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VERSION_ID="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return "dev"
}

func publishConfig(cfg config.Config) error {
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return err
	}
	return config.WriteAtomic(MergedConfig, b, 0o600)
}

// AuthorizeKeys writes keys as the login user's authorized_keys (in home,
// owned by uid), replacing what was there: the config is the truth.
func AuthorizeKeys(home string, uid int, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	dir := filepath.Join(home, ".ssh")
	for _, d := range []string{home, dir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
		if err := os.Chown(d, uid, uid); err != nil {
			return err
		}
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return err
	}
	p := filepath.Join(dir, "authorized_keys")
	if err := config.WriteAtomic(p, []byte(strings.Join(keys, "\n")+"\n"), 0o600); err != nil {
		return err
	}
	return os.Chown(p, uid, uid)
}
