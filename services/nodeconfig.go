package services

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	"gopkg.in/yaml.v3"

	"github.com/rosos/ros/config"
	"github.com/rosos/ros/config/datasource"
	"github.com/rosos/ros/system/blockdev"
	"github.com/rosos/ros/system/mount"
)

// More paths of the node's config.
const (
	// OEMLabel is the optional OEM partition; its oem-config.yml is the
	// layer after the image's.
	OEMLabel = "RANCHER_OEM"
	oemDir   = "/run/ros/oem"
	// ScriptsDir keeps user-data scripts (#!) from datasources, run once
	// per instance.
	ScriptsDir = "/var/lib/rancher/conf/scripts"
	// ConfigLog is where config problems found at boot are written, beside
	// the console.
	ConfigLog = "/var/log/ros-config.log"
)

// NodeConfig holds the layers of the node's config, later wins: the image's
// os-config.yml, the OEM partition, each datasource's document
// (cloud-config.d), what `ros config set` writes (cloud-config.yml), and
// rancher.* on the kernel command line. It is read once at boot and changed
// by Reconfigure; everything else gets the parsed result from here.
type NodeConfig struct {
	change   sync.Mutex // held by a change from start to end
	mu       sync.Mutex
	image    config.Layer
	oem      *config.Layer
	ds       []config.Layer
	user     config.Layer
	cmdline  config.Layer
	cloudURL string
	merged   map[string]any
	cfg      config.Config
}

// Layers returns the layers in order.
func (n *NodeConfig) Layers() []config.Layer {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.layersLocked()
}

func (n *NodeConfig) layersLocked() []config.Layer {
	ls := []config.Layer{n.image}
	if n.oem != nil {
		ls = append(ls, *n.oem)
	}
	ls = append(ls, n.ds...)
	ls = append(ls, n.user, n.cmdline)
	return ls
}

// Config returns the merged config.
func (n *NodeConfig) Config() config.Config {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cfg
}

// Merged returns a copy of the merged document.
func (n *NodeConfig) Merged() map[string]any {
	n.mu.Lock()
	defer n.mu.Unlock()
	return config.Copy(n.merged)
}

// User returns a copy of the user's layer (cloud-config.yml).
func (n *NodeConfig) User() config.Layer {
	n.mu.Lock()
	defer n.mu.Unlock()
	return config.Layer{Name: n.user.Name, Doc: config.Copy(n.user.Doc)}
}

// problem reports a config problem on the console and in ConfigLog.
func (m *Manager) problem(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	m.consolef("config: %s", msg)
	if err := os.MkdirAll(filepath.Dir(ConfigLog), 0o755); err == nil {
		if f, err := os.OpenFile(ConfigLog, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			fmt.Fprintf(f, "%s %s\n", time.Now().Format(time.RFC3339), msg)
			f.Close()
		}
	}
}

// loadNodeConfig reads every layer for the boot. A layer that is bad (bad
// YAML, an unknown key, a wrong type, a service definition that does not
// parse) is reported and skipped: the node boots with the others, and a
// datasource's last good document stays in cloud-config.d.
func (m *Manager) loadNodeConfig(ctx context.Context) (*NodeConfig, error) {
	n := &NodeConfig{}
	img, err := config.ReadFile(ImageConfig)
	if err != nil {
		return nil, err
	}
	n.image = img
	cmdline, _ := os.ReadFile("/proc/cmdline")
	cl := config.ParseCmdline(string(cmdline))
	for _, p := range cl.Problems {
		m.problem("kernel command line: %s; skipped", p)
	}
	n.cmdline, n.cloudURL = cl.Layer, cl.CloudConfigURL
	if l, ok := m.readOEM(); ok {
		n.oem = &l
	}
	n.user = m.readUser()
	// The datasources to read come from the layers other than their own.
	pre, err := config.Merge(n.layersLocked()...)
	if err != nil {
		return nil, err
	}
	m.readLocalDatasources(ctx, pre, n.cloudURL)
	ds, errs := config.ReadDir(CloudConfigDir)
	for _, e := range errs {
		m.problem("%v; skipped", e)
	}
	n.ds = ds
	n.settle(ctx, m)
	return n, nil
}

func (m *Manager) readUser() config.Layer {
	l, err := config.ReadFile(UserConfig)
	if err == nil {
		return l
	}
	if !os.IsNotExist(unwrapAll(err)) {
		m.problem("%v; skipped, booting without it (fix it with `ros config validate` and `ros config merge`)", err)
	}
	return config.Layer{Name: UserConfig, Doc: map[string]any{}}
}

// settle merges the layers one by one and drops one that makes the whole
// unusable (its services do not parse): the config the node runs is always
// one that works.
func (n *NodeConfig) settle(ctx context.Context, m *Manager) {
	n.mu.Lock()
	defer n.mu.Unlock()
	acc := []config.Layer{n.image}
	keep := func(l config.Layer) bool {
		try := append(append([]config.Layer{}, acc...), l)
		cfg, err := config.Merge(try...)
		if err == nil {
			_, _, err = m.definitions(ctx, cfg, true)
		}
		if err != nil {
			m.problem("%s: %v; skipped", l.Name, err)
			return false
		}
		acc = try
		return true
	}
	if n.oem != nil && !keep(*n.oem) {
		n.oem = nil
	}
	var ds []config.Layer
	for _, l := range n.ds {
		if keep(l) {
			ds = append(ds, l)
		}
	}
	n.ds = ds
	if !keep(n.user) {
		n.user = config.Layer{Name: UserConfig, Doc: map[string]any{}}
	}
	if !keep(n.cmdline) {
		n.cmdline = config.Layer{Name: "kernel command line", Doc: map[string]any{}}
	}
	n.merged = config.MergeDocs(acc...)
	n.cfg, _ = config.Merge(acc...)
}

// readOEM reads oem-config.yml from the OEM partition, if there is one.
func (m *Manager) readOEM() (config.Layer, bool) {
	devs, err := blockdev.List("/sys/class/block", "/dev")
	if err != nil {
		return config.Layer{}, false
	}
	dev, err := blockdev.FindLabel(devs, OEMLabel)
	if err != nil {
		return config.Layer{}, false
	}
	if err := mount.Mount(dev.Path, oemDir, dev.Type, unix.MS_RDONLY|unix.MS_NODEV|unix.MS_NOSUID|unix.MS_NOEXEC, ""); err != nil {
		m.problem("OEM partition %s: %v", dev.Path, err)
		return config.Layer{}, false
	}
	defer unix.Unmount(oemDir, 0)
	l, err := config.ReadFile(filepath.Join(oemDir, "oem-config.yml"))
	if err != nil {
		if !os.IsNotExist(unwrapAll(err)) {
			m.problem("OEM partition: %v; skipped", err)
		}
		return config.Layer{}, false
	}
	l.Name = "oem:" + l.Name
	return l, true
}

// sources returns the configured datasources (rancher.cloud_init.datasources,
// or the default), with cloud-config-url= from the kernel command line.
func (m *Manager) sources(cfg config.Config, cloudURL string) []datasource.Source {
	names := cfg.Rancher.CloudInit.Datasources
	if len(names) == 0 {
		names = datasource.Default
	}
	srcs, err := datasource.ParseSources(names)
	if err != nil {
		m.problem("%v; using %v", err, datasource.Default)
		srcs, _ = datasource.ParseSources(datasource.Default)
	}
	if cloudURL != "" {
		srcs = append(srcs, datasource.Source{Kind: "url", Arg: cloudURL, Network: true})
	}
	return srcs
}

func newReader() *datasource.Reader {
	return &datasource.Reader{SysBlock: "/sys/class/block", DevDir: "/dev", MountDir: "/run/ros/seed", Wait: 90 * time.Second}
}

// readLocalDatasources reads the datasources that need no network.
func (m *Manager) readLocalDatasources(ctx context.Context, cfg config.Config, cloudURL string) {
	r := newReader()
	for _, s := range m.sources(cfg, cloudURL) {
		if !s.Network {
			m.readDatasource(ctx, r, s)
		}
	}
}

// readDatasource reads one datasource and stores its document in
// cloud-config.d (and a script in ScriptsDir). It reports whether the
// stored document changed. A bad document is reported and the last good
// one is kept.
func (m *Manager) readDatasource(ctx context.Context, r *datasource.Reader, s datasource.Source) bool {
	res, err := r.Read(ctx, s)
	if err == datasource.ErrAbsent {
		return false
	}
	if err != nil {
		m.problem("datasource %s: %v; skipped, booting with the last good config", s, err)
		return false
	}
	file := dsFile(s)
	if res.UserData.Script != nil {
		if err := saveScript(file, res.UserData.Script, res.InstanceID); err != nil {
			m.problem("datasource %s: script: %v", s, err)
		}
	}
	l := res.Layer()
	b, err := yaml.Marshal(l.Doc)
	if err != nil {
		m.problem("datasource %s: %v", s, err)
		return false
	}
	b = append([]byte(fmt.Sprintf("#cloud-config\n# from datasource %s (instance %q)\n", s, res.InstanceID)), b...)
	path := filepath.Join(CloudConfigDir, file+".yml")
	if old, err := os.ReadFile(path); err == nil && string(old) == string(b) {
		m.logf("datasource %s: unchanged", s)
		return false
	}
	if err := config.WriteAtomic(path, b, 0o600); err != nil {
		m.problem("datasource %s: %v", s, err)
		return false
	}
	m.logf("datasource %s: read (instance %q)", s, res.InstanceID)
	return true
}

// dsFile names a datasource's files: nocloud, configdrive, ec2, url-HASH...
func dsFile(s datasource.Source) string {
	switch s.Kind {
	case "nocloud", "configdrive", "ec2", "openstack":
		return s.Kind
	}
	var h uint32 = 2166136261
	for _, c := range []byte(s.Arg) {
		h = (h ^ uint32(c)) * 16777619
	}
	return fmt.Sprintf("%s-%08x", s.Kind, h)
}

// saveScript keeps a user-data script with the instance it came from; it
// is run at the end of boot once per instance.
func saveScript(name string, script []byte, instance string) error {
	if err := os.MkdirAll(ScriptsDir, 0o700); err != nil {
		return err
	}
	if instance == "" {
		instance = fmt.Sprintf("%x", fnv(script))
	}
	if err := config.WriteAtomic(filepath.Join(ScriptsDir, name), script, 0o700); err != nil {
		return err
	}
	return config.WriteAtomic(filepath.Join(ScriptsDir, name+".instance"), []byte(instance), 0o600)
}

func fnv(b []byte) uint64 {
	var h uint64 = 14695981039346656037
	for _, c := range b {
		h = (h ^ uint64(c)) * 1099511628211
	}
	return h
}

// pendingScripts lists the user-data scripts not yet run for their
// instance.
func pendingScripts() []string {
	paths, _ := filepath.Glob(filepath.Join(ScriptsDir, "*.instance"))
	var out []string
	for _, p := range paths {
		script := strings.TrimSuffix(p, ".instance")
		inst, _ := os.ReadFile(p)
		ran, _ := os.ReadFile(script + ".ran")
		if string(inst) != string(ran) {
			out = append(out, script)
		}
	}
	sort.Strings(out)
	return out
}

// readNetworkDatasources reads the datasources that need the network,
// after the network service started, and applies what changed.
func (m *Manager) readNetworkDatasources(ctx context.Context, n *NodeConfig) {
	cfg := n.Config()
	r := newReader()
	changed := false
	for _, s := range m.sources(cfg, n.cloudURL) {
		if s.Network && m.readDatasource(ctx, r, s) {
			changed = true
		}
	}
	if !changed {
		return
	}
	ds, errs := config.ReadDir(CloudConfigDir)
	for _, e := range errs {
		m.problem("%v; skipped", e)
	}
	plan, err := m.Reconfigure(ctx, n, ReconfigureRequest{datasources: ds})
	if err != nil {
		m.problem("network datasources: %v; skipped", err)
		return
	}
	m.logf("network datasources applied: %d keys changed, restarted %v, reboot needed for %v", len(plan.Changes), plan.Restarted, plan.Reboot)
}

// refreshUser re-reads the user's layer after something other than
// Reconfigure wrote it (ros service enable and disable).
func (n *NodeConfig) refreshUser(m *Manager) {
	n.change.Lock()
	defer n.change.Unlock()
	l, err := config.ReadFile(UserConfig)
	if err != nil {
		m.logf("refresh %s: %v", UserConfig, err)
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.user = l
	layers := n.layersLocked()
	if cfg, err := config.Merge(layers...); err == nil {
		n.merged, n.cfg = config.MergeDocs(layers...), cfg
	}
}

// privateKeys are left out of an export unless asked for.
var privateKeys = []string{"rancher.ssh.keys", "rancher.docker.ca_key", "rancher.docker.server_key"}

// Export returns the user's config (every layer but the image's), or with
// full the whole merged config; private keys only with private. Registry
// credentials are never exported.
func (n *NodeConfig) Export(full, private bool) map[string]any {
	n.mu.Lock()
	var doc map[string]any
	if full {
		doc = config.Copy(n.merged)
	} else {
		doc = config.Copy(config.MergeDocs(n.layersLocked()[1:]...))
	}
	n.mu.Unlock()
	_ = config.Set(doc, config.RegistryAuthsKey, nil)
	if !private {
		for _, k := range privateKeys {
			_ = config.Set(doc, k, nil)
		}
	}
	return doc
}

// isSecretKey reports whether key is (or is under) a key whose values are
// never shown: registry credentials.
func isSecretKey(key string) bool {
	return key == config.RegistryAuthsKey || strings.HasPrefix(key, config.RegistryAuthsKey+".") || strings.HasPrefix(key, config.RegistryAuthsKey+"[")
}

// hideSecrets replaces the values of secret keys in changes.
func hideSecrets(changes []config.Change) {
	for i, c := range changes {
		if !isSecretKey(c.Key) {
			continue
		}
		if c.Old != nil {
			changes[i].Old = "(hidden)"
		}
		if c.New != nil {
			changes[i].New = "(hidden)"
		}
	}
}
