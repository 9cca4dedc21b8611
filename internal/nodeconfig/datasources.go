package nodeconfig

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/rosos/ros/config"
	"github.com/rosos/ros/config/datasource"
	"github.com/rosos/ros/internal/paths"
	"go.yaml.in/yaml/v3"
)

// sources returns the configured datasources (rancher.cloud_init.datasources,
// or the default), with cloud-config-url= from the kernel command line.
func (n *NodeConfig) sources(cfg config.Config) []datasource.Source {
	names := cfg.Rancher.CloudInit.Datasources
	if len(names) == 0 {
		names = datasource.Default
	}
	srcs, err := datasource.ParseSources(names)
	if err != nil {
		n.problem("%v; using %v", err, datasource.Default)
		srcs, _ = datasource.ParseSources(datasource.Default)
	}
	if n.cloudURL != "" {
		srcs = append(srcs, datasource.Source{Kind: "url", Arg: n.cloudURL, Network: true})
	}
	return srcs
}

func newReader() *datasource.Reader {
	return &datasource.Reader{SysBlock: "/sys/class/block", DevDir: "/dev", MountDir: paths.SeedDir, Wait: 90 * time.Second}
}

// readLocalDatasources reads the datasources that need no network.
func (n *NodeConfig) readLocalDatasources(ctx context.Context, cfg config.Config) {
	r := newReader()
	for _, s := range n.sources(cfg) {
		if !s.Network {
			n.readDatasource(ctx, r, s)
		}
	}
}

// readDatasource reads one datasource and stores its document in
// cloud-config.d (and a script in paths.ScriptsDir). It reports whether the
// stored document changed. A bad document is reported and the last good
// one is kept.
func (n *NodeConfig) readDatasource(ctx context.Context, r *datasource.Reader, s datasource.Source) bool {
	res, err := r.Read(ctx, s)
	if errors.Is(err, datasource.ErrAbsent) {
		return false
	}
	if err != nil {
		n.problem("datasource %s: %v; skipped, booting with the last good config", s, err)
		return false
	}
	file := dsFile(s)
	if res.UserData.Script != nil {
		if err := saveScript(file, res.UserData.Script, res.InstanceID); err != nil {
			n.problem("datasource %s: script: %v", s, err)
		}
	}
	l := res.Layer()
	b, err := yaml.Marshal(l.Doc)
	if err != nil {
		n.problem("datasource %s: %v", s, err)
		return false
	}
	b = append([]byte(fmt.Sprintf("#cloud-config\n# from datasource %s (instance %q)\n", s, res.InstanceID)), b...)
	path := filepath.Join(paths.CloudConfigDir, file+".yml")
	if old, err := os.ReadFile(path); err == nil && string(old) == string(b) {
		n.log().Info("datasource unchanged", "datasource", s.String())
		return false
	}
	if err := config.WriteAtomic(path, b, 0o600); err != nil {
		n.problem("datasource %s: %v", s, err)
		return false
	}
	n.log().Info("datasource read", "datasource", s.String(), "instance", res.InstanceID)
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
	if err := os.MkdirAll(paths.ScriptsDir, 0o700); err != nil {
		return err
	}
	if instance == "" {
		instance = fmt.Sprintf("%x", fnv(script))
	}
	if err := config.WriteAtomic(filepath.Join(paths.ScriptsDir, name), script, 0o700); err != nil {
		return err
	}
	return config.WriteAtomic(filepath.Join(paths.ScriptsDir, name+".instance"), []byte(instance), 0o600)
}

func fnv(b []byte) uint64 {
	var h uint64 = 14695981039346656037
	for _, c := range b {
		h = (h ^ uint64(c)) * 1099511628211
	}
	return h
}

// PendingScripts lists the user-data scripts not yet run for their
// instance.
func PendingScripts() []string {
	paths, _ := filepath.Glob(filepath.Join(paths.ScriptsDir, "*.instance"))
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

// ReadNetworkDatasources reads the datasources that need the network,
// after the network service started. When a stored document changed it
// returns every datasource layer, for a change of the config (the caller's,
// which applies it).
func (n *NodeConfig) ReadNetworkDatasources(ctx context.Context) ([]config.Layer, bool) {
	cfg := n.Config()
	r := newReader()
	changed := false
	for _, s := range n.sources(cfg) {
		if s.Network && n.readDatasource(ctx, r, s) {
			changed = true
		}
	}
	if !changed {
		return nil, false
	}
	ds, errs := config.ReadDir(paths.CloudConfigDir)
	for _, e := range errs {
		n.problem("%v; skipped", e)
	}
	return ds, true
}
