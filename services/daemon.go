package services

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	"gopkg.in/yaml.v3"

	"github.com/rosos/ros/config"
	"github.com/rosos/ros/init/bootlog"
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

// Daemon is the service manager process: it gathers the config (layers and
// datasources), applies what the boot needs (host name, keys, sysctl,
// modules, mounts, write_files, bootcmd), starts the services, tells PID 1
// (on status) that the boot is done, reads the network datasources, runs
// runcmd, and stops the services on ctx's end.
func Daemon(ctx context.Context, console, log io.Writer, status *os.File) error {
	m := &Manager{Console: console, Log: log, Timeline: bootlog.New(io.Discard, "service")}
	defer func() {
		if err := m.Timeline.Save(Timeline); err != nil {
			m.logf("boot timeline: %v", err)
		}
	}()
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
	// A marker in /run (gone at the next boot) tells a restart in this boot.
	const startedMarker = "/run/ros/service-manager.started"
	if _, err := os.Stat(startedMarker); err == nil {
		m.Restarted = true
		m.logf("restarted: adopting the running services")
	}
	node, err := m.loadNodeConfig(ctx)
	if err != nil {
		return err
	}
	m.Node = node
	m.Runner.Credentials = configCredentials(node.Config)
	cfg := node.Config()
	m.Runner.BeforeStart = func(s Service, root string) {
		m.writeFiles(node.Config().WriteFiles, s.Name, root)
	}
	defs, sources, err := m.definitions(ctx, cfg, false)
	if err != nil {
		return err
	}
	if !m.Restarted {
		m.applyBoot(ctx, cfg, defs)
		if err := os.WriteFile(startedMarker, nil, 0o644); err != nil {
			m.logf("%s: %v", startedMarker, err)
		}
	} else if err := publishConfig(cfg); err != nil {
		m.consolef("config: %v", err)
	}
	m.root = ctx
	api := &API{M: m, Env: serviceEnv(cfg), Node: node}
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
	var sw io.Writer
	if status != nil {
		sw = status
		fmt.Fprintf(status, `{"event":"ready","services":%d}`+"\n", running)
	}
	go m.assess(ctx, sw, AssessDeadline)
	// Healthy marks come later; keep the saved timeline current a while.
	go func() {
		for i := 0; i < 20 && ctx.Err() == nil; i++ {
			time.Sleep(15 * time.Second)
			_ = m.Timeline.Save(Timeline)
		}
	}()
	if !m.Restarted {
		m.endOfBoot(ctx, node)
	}
	<-ctx.Done()
	m.logf("stopping services")
	m.StopAll(context.WithoutCancel(ctx))
	m.Wait()
	return nil
}

// applyBoot applies the config's boot-time keys, before the services
// start.
func (m *Manager) applyBoot(ctx context.Context, cfg config.Config, defs []Service) {
	if err := setHostname(cfg.Hostname); err != nil {
		m.problem("hostname: %v", err)
	}
	if err := publishConfig(cfg); err != nil {
		m.problem("publish: %v", err)
	}
	if err := AuthorizeKeys("/home/rancher", RancherUID, cfg.SSHAuthorizedKeys); err != nil {
		m.problem("ssh_authorized_keys: %v", err)
	}
	m.writeHostKeys(cfg.Rancher.SSH.Keys)
	m.loadModules(cfg.Rancher.Modules)
	m.applySysctl(cfg.Rancher.Sysctl)
	m.doMounts(cfg.Mounts)
	m.writeFiles(cfg.WriteFiles, "", "/")
	// bootcmd, then rancher.network.pre_cmds: the services (the network's
	// included) have not started yet.
	if body := script(cfg.Bootcmd) + script(shellCommands(cfg.Rancher.Network.PreCmds)); body != "" {
		m.mark("bootcmd", "began")
		code, err := m.runScript(ctx, "cloud-init-bootcmd", body, defs)
		switch {
		case err != nil:
			m.problem("bootcmd: %v", err)
		case code != 0:
			m.problem("bootcmd: exit status %d (output in %s)", code, LogPath(SystemLogDir, "cloud-init-bootcmd"))
		default:
			m.logf("bootcmd: done")
		}
		m.mark("bootcmd", "exited")
	}
}

// endOfBoot reads the datasources that need the network, then runs
// runcmd, the user-data scripts and the start scripts.
func (m *Manager) endOfBoot(ctx context.Context, node *NodeConfig) {
	before := node.Config()
	m.readNetworkDatasources(ctx, node)
	cfg := node.Config()
	if !reflect.DeepEqual(before.WriteFiles, cfg.WriteFiles) {
		m.writeFiles(cfg.WriteFiles, "", "/")
	}
	pending := pendingScripts()
	if len(cfg.Runcmd) == 0 && len(cfg.Rancher.Network.PostCmds) == 0 && len(pending) == 0 && !anyExists(startScripts) {
		return // nothing to run: no container
	}
	body := runcmdScript(cfg, pending)
	defs, _, err := m.definitions(ctx, cfg, false)
	if err != nil {
		m.problem("runcmd: %v", err)
		return
	}
	m.mark("runcmd", "began")
	code, err := m.runScript(ctx, "cloud-init-runcmd", body, defs)
	m.mark("runcmd", "exited")
	switch {
	case err != nil:
		m.problem("runcmd: %v", err)
		return
	case code != 0:
		m.problem("runcmd: exit status %d (output in %s)", code, LogPath(SystemLogDir, "cloud-init-runcmd"))
	default:
		m.logf("runcmd: done")
	}
	for _, p := range pending {
		if inst, err := os.ReadFile(p + ".instance"); err == nil {
			_ = config.WriteAtomic(p+".ran", inst, 0o600)
		}
	}
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
	// In place, not by rename: containers bind /etc/hosts, and a bind
	// keeps the file it was made with.
	if err := os.WriteFile("/etc/hostname", []byte(name+"\n"), 0o644); err != nil {
		return err
	}
	hosts := fmt.Sprintf("127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\tlocalhost ip6-localhost ip6-loopback\n", name)
	if b, err := os.ReadFile("/etc/hosts"); err != nil || string(b) != hosts {
		return os.WriteFile("/etc/hosts", []byte(hosts), 0o644)
	}
	return nil
}

// included parses the services turned on by rancher.services_include.
// With strict, one that fails is an error; else it is reported and skipped.
func (m *Manager) included(ctx context.Context, cfg config.Config, env map[string]string, sources map[string]string, strict bool) ([]Service, error) {
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
		if err == nil {
			var defs []Service
			defs, err = ParseComposeDoc(ctx, "services_include."+n, doc, env)
			if err == nil {
				for _, d := range defs {
					sources[d.Name] = kind
				}
				out = append(out, defs...)
				continue
			}
		}
		if strict {
			return nil, fmt.Errorf("rancher.services_include.%s: %w", n, err)
		}
		m.problem("%v; skipped", err)
	}
	return out, nil
}

func anyExists(paths []string) bool {
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			return true
		}
	}
	return false
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
	// Services do not pull: registry credentials stay with the manager.
	cfg.Rancher.RegistryAuths = nil
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
