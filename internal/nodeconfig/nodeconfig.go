// Package nodeconfig holds the node's config: its layers (the image's,
// OEM, each datasource's, the user's, the kernel command line's), read at
// boot with the bad ones reported and skipped, the datasources that fill
// them, and a change proposed, checked and committed whole.
package nodeconfig

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/rosos/ros/config"
	"github.com/rosos/ros/internal/paths"
	"github.com/rosos/ros/system/blockdev"
	"github.com/rosos/ros/system/mount"
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

	r Reporter
}

// Reporter is told what NodeConfig finds and does.
type Reporter struct {
	// Problem reports a config problem a user must see (the console and
	// the config log).
	Problem func(msg string)
	Log     *slog.Logger
	// Valid checks a merged config beyond its keys and types (its services
	// parse); a layer that makes it fail is skipped at boot.
	Valid func(ctx context.Context, cfg config.Config) error
}

func (n *NodeConfig) problem(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if n.r.Problem != nil {
		n.r.Problem(msg)
	}
}

func (n *NodeConfig) log() *slog.Logger {
	if n.r.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return n.r.Log
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

// Load reads every layer for the boot. A layer that is bad (bad
// YAML, an unknown key, a wrong type, a service definition that does not
// parse) is reported and skipped: the node boots with the others, and a
// datasource's last good document stays in cloud-config.d.
func Load(ctx context.Context, r Reporter) (*NodeConfig, error) {
	n := &NodeConfig{r: r}
	img, err := config.ReadFile(paths.ImageConfig)
	if err != nil {
		return nil, err
	}
	n.image = img
	cmdline, _ := os.ReadFile("/proc/cmdline")
	cl := config.ParseCmdline(string(cmdline))
	for _, p := range cl.Problems {
		n.problem("kernel command line: %s; skipped", p)
	}
	n.cmdline, n.cloudURL = cl.Layer, cl.CloudConfigURL
	if l, ok := n.readOEM(); ok {
		n.oem = &l
	}
	n.user = n.readUser()
	// The datasources to read come from the layers other than their own.
	pre, err := config.Merge(n.layersLocked()...)
	if err != nil {
		return nil, err
	}
	n.readLocalDatasources(ctx, pre)
	ds, errs := config.ReadDir(paths.CloudConfigDir)
	for _, e := range errs {
		n.problem("%v; skipped", e)
	}
	n.ds = ds
	n.settle(ctx)
	return n, nil
}

func (n *NodeConfig) readUser() config.Layer {
	l, err := config.ReadFile(paths.UserConfig)
	if err == nil {
		return l
	}
	if !errors.Is(err, fs.ErrNotExist) {
		n.problem("%v; skipped, booting without it (fix it with `ros config validate` and `ros config merge`)", err)
	}
	return config.Layer{Name: paths.UserConfig, Doc: map[string]any{}}
}

// settle merges the layers one by one and drops one that makes the whole
// unusable (its services do not parse): the config the node runs is always
// one that works.
func (n *NodeConfig) settle(ctx context.Context) {
	n.mu.Lock()
	defer n.mu.Unlock()
	acc := []config.Layer{n.image}
	keep := func(l config.Layer) bool {
		try := append(append([]config.Layer{}, acc...), l)
		if len(l.Doc) == 0 {
			// Nothing to merge (no user config yet, no rancher.* on the
			// command line): the config stays what the layers before made
			// it, so parsing every service again (a tenth of a second
			// under emulation) would find nothing new. The image's own
			// services are checked when it is built.
			acc = try
			return true
		}
		cfg, err := config.Merge(try...)
		if err == nil && n.r.Valid != nil {
			err = n.r.Valid(ctx, cfg)
		}
		if err != nil {
			n.problem("%s: %v; skipped", l.Name, err)
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
		n.user = config.Layer{Name: paths.UserConfig, Doc: map[string]any{}}
	}
	if !keep(n.cmdline) {
		n.cmdline = config.Layer{Name: "kernel command line", Doc: map[string]any{}}
	}
	n.merged = config.MergeDocs(acc...)
	n.cfg, _ = config.Merge(acc...)
}

// OEMLabel is the optional OEM partition; its oem-config.yml is the layer
// after the image's.
const OEMLabel = "RANCHER_OEM"

// readOEM reads oem-config.yml from the OEM partition, if there is one.
func (n *NodeConfig) readOEM() (config.Layer, bool) {
	devs, err := blockdev.List("/sys/class/block", "/dev")
	if err != nil {
		return config.Layer{}, false
	}
	dev, err := blockdev.FindLabel(devs, OEMLabel)
	if err != nil {
		return config.Layer{}, false
	}
	if err := mount.Mount(dev.Path, paths.OEMDir, dev.Type, unix.MS_RDONLY|unix.MS_NODEV|unix.MS_NOSUID|unix.MS_NOEXEC, ""); err != nil {
		n.problem("OEM partition %s: %v", dev.Path, err)
		return config.Layer{}, false
	}
	defer func() { _ = unix.Unmount(paths.OEMDir, 0) }() // read-only
	l, err := config.ReadFile(filepath.Join(paths.OEMDir, "oem-config.yml"))
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			n.problem("OEM partition: %v; skipped", err)
		}
		return config.Layer{}, false
	}
	l.Name = "oem:" + l.Name
	return l, true
}

// RefreshUser re-reads the user's layer after something other than a
// change through Propose and Commit wrote it (ros service enable and
// disable).
func (n *NodeConfig) RefreshUser() {
	n.change.Lock()
	defer n.change.Unlock()
	l, err := config.ReadFile(paths.UserConfig)
	if err != nil {
		n.problem("refresh %s: %v", paths.UserConfig, err)
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

// IsSecret reports whether key is (or is under) a key whose values are
// never shown: registry credentials.
func IsSecret(key string) bool {
	return key == config.RegistryAuthsKey || strings.HasPrefix(key, config.RegistryAuthsKey+".") || strings.HasPrefix(key, config.RegistryAuthsKey+"[")
}

// HideSecrets replaces the values of secret keys in changes.
func HideSecrets(changes []config.Change) {
	for i, c := range changes {
		if !IsSecret(c.Key) {
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

// BeginChange takes the node's change lock: one change at a time, from
// its proposal to its commit. The fields have their own lock, so that what
// runs while a change is applied (a service's start) can read the config.
func (n *NodeConfig) BeginChange() (end func()) {
	n.change.Lock()
	return n.change.Unlock
}

// Datasources returns the datasources' layers.
func (n *NodeConfig) Datasources() []config.Layer {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]config.Layer(nil), n.ds...)
}

// Cmdline returns the kernel command line's layer.
func (n *NodeConfig) Cmdline() config.Layer {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cmdline
}

// Proposal is the node's config with a changed user layer (or changed
// datasource layers), merged and checked, not yet the node's.
type Proposal struct {
	User        config.Layer
	Datasources []config.Layer
	// Merged and Config are the new merged document and config; Old and
	// OldMerged the current ones.
	Merged    map[string]any
	Config    config.Config
	Old       config.Config
	OldMerged map[string]any
}

// Propose merges the node's layers with user and ds in place of its own
// and checks the user's layer alone (keys, types, values) and the whole.
// It changes nothing.
func (n *NodeConfig) Propose(user config.Layer, ds []config.Layer) (Proposal, error) {
	n.mu.Lock()
	next := &NodeConfig{image: n.image, oem: n.oem, ds: ds, user: user, cmdline: n.cmdline}
	p := Proposal{User: user, Datasources: ds, Old: n.cfg, OldMerged: n.merged}
	n.mu.Unlock()
	if err := config.Check(user.Doc); err != nil {
		return Proposal{}, err
	}
	uc, err := config.Merge(user)
	if err != nil {
		return Proposal{}, err
	}
	if err := uc.Validate(); err != nil {
		return Proposal{}, err
	}
	layers := next.layersLocked()
	p.Merged = config.MergeDocs(layers...)
	if p.Config, err = config.Merge(layers...); err != nil {
		return Proposal{}, err
	}
	return p, nil
}

// Commit makes a proposal the node's config.
func (n *NodeConfig) Commit(p Proposal) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.ds, n.merged, n.cfg = p.Datasources, p.Merged, p.Config
	n.user = config.Layer{Name: p.User.Name, Doc: config.Copy(p.User.Doc)}
}
