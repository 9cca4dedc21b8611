package services

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sort"
	"strings"

	"github.com/rosos/ros/config"
)

// ReconfigureRequest is a change to the user's config (POST /v1/config):
// set one key, or merge a document.
type ReconfigureRequest struct {
	Key    string `json:"key,omitempty"`
	Value  string `json:"value,omitempty"` // YAML
	Unset  bool   `json:"unset,omitempty"`
	Doc    string `json:"doc,omitempty"` // a document to merge (YAML)
	DryRun bool   `json:"dry_run,omitempty"`

	datasources []config.Layer // new datasource layers (at boot, from the network)
}

// Plan is what a change does.
type Plan struct {
	Changes []config.Change `json:"changes"`
	// Live are the changed keys applied without a reboot; Reboot those
	// that take effect at the next boot.
	Live   []string `json:"live,omitempty"`
	Reboot []string `json:"reboot,omitempty"`
	// Restart are the services restarted (or, dry run, that would be);
	// Start and Stop those started and stopped.
	Restart []string `json:"restart,omitempty"`
	Start   []string `json:"start,omitempty"`
	Stop    []string `json:"stop,omitempty"`
	// Overridden are set keys whose value a later layer (the kernel
	// command line) decides.
	Overridden []string `json:"overridden,omitempty"`
	DryRun     bool     `json:"dry_run,omitempty"`
	Restarted  []string `json:"-"`
}

// liveKeys are the keys applied without a reboot.
var liveKeys = []string{
	"hostname", "ssh_authorized_keys", "rancher.network", "rancher.sysctl", "rancher.modules",
	"rancher.services", "rancher.services_include", "rancher.environment", "rancher.docker",
	"rancher.ssh", "rancher.restart_services", "rancher.log", "rancher.debug",
}

func isLive(key string) bool {
	for _, k := range liveKeys {
		if config.Under(key, k) {
			return true
		}
	}
	return false
}

// Reconfigure changes the user's config (or, at boot, the datasources'
// layers), checks the result whole (keys, types, values, and that every
// service still parses), writes it atomically, and applies what can be
// applied live. With DryRun it only says what it would do. On any error
// nothing is changed.
func (m *Manager) Reconfigure(ctx context.Context, n *NodeConfig, req ReconfigureRequest) (Plan, error) {
	// One change at a time; n.mu guards the fields only, so that what runs
	// while a change is applied (a service's start) can read the config.
	n.change.Lock()
	defer n.change.Unlock()
	if req.datasources != nil {
		n.mu.Lock()
		user := config.Layer{Name: UserConfig, Doc: config.Copy(n.user.Doc)}
		n.mu.Unlock()
		plan, commit, err := m.reconfigure(ctx, n, req, user, req.datasources)
		if err == nil && !req.DryRun {
			commit()
		}
		return plan, err
	}
	// A change of the user's file: made to what is on disk, under its
	// lock (config.UpdateFile), so that a writer in another process (or
	// ros service enable) is never overwritten with an older copy.
	var plan Plan
	var commit func()
	var changeErr error // the change's own error, passed on as it is
	err := config.UpdateFile(UserConfig, func(doc map[string]any) (bool, error) {
		plan, commit, changeErr = m.changeUser(ctx, n, req, doc)
		return changeErr == nil && !req.DryRun, changeErr
	})
	if changeErr != nil {
		return Plan{}, changeErr
	}
	if err != nil {
		return Plan{}, fmt.Errorf("write %s: %w (nothing changed)", UserConfig, err)
	}
	if !req.DryRun {
		commit()
	}
	return plan, nil
}

// changeUser makes req's change to doc, the user's document as stored,
// and plans it (reconfigure).
func (m *Manager) changeUser(ctx context.Context, n *NodeConfig, req ReconfigureRequest, doc map[string]any) (Plan, func(), error) {
	user := config.Layer{Name: UserConfig, Doc: doc}
	switch {
	case req.Key != "":
		var v any
		if !req.Unset {
			var err error
			if v, err = config.ParseValue(req.Value); err != nil {
				return Plan{}, nil, fmt.Errorf("%s: %w", req.Key, err)
			}
		}
		if err := config.Set(user.Doc, req.Key, v); err != nil {
			return Plan{}, nil, err
		}
	case req.Doc != "":
		l, err := config.ParseDoc("the document", []byte(req.Doc))
		if err != nil {
			return Plan{}, nil, err
		}
		merged := config.MergeDocs(user, l)
		clear(doc)
		maps.Copy(doc, merged)
	default:
		return Plan{}, nil, errors.New("nothing to change: give a key and value, or a document")
	}
	n.mu.Lock()
	ds := n.ds
	n.mu.Unlock()
	return m.reconfigure(ctx, n, req, user, ds)
}

// errRefused marks a change refused for what it is.
var errRefused = errors.New("refused, nothing changed")

// reconfigure checks the config with the user's layer user and the
// datasources' ds whole (keys, types, values, and that every service
// still parses), says what the change does, and, unless a dry run, makes
// it the node's and applies what can be applied live when the caller,
// having written the user's file, calls commit.
func (m *Manager) reconfigure(ctx context.Context, n *NodeConfig, req ReconfigureRequest, user config.Layer, ds []config.Layer) (Plan, func(), error) {
	n.mu.Lock()
	image, oem, cmdline, curMerged, old := n.image, n.oem, n.cmdline, n.merged, n.cfg
	n.mu.Unlock()
	if err := config.Check(user.Doc); err != nil {
		return Plan{}, nil, fmt.Errorf("%w: %w", errRefused, err)
	}
	if uc, err := config.Merge(user); err != nil {
		return Plan{}, nil, fmt.Errorf("%w: %w", errRefused, err)
	} else if err := uc.Validate(); err != nil {
		return Plan{}, nil, fmt.Errorf("%w: %w", errRefused, err)
	}
	next := &NodeConfig{image: image, oem: oem, ds: ds, user: user, cmdline: cmdline}
	layers := next.layersLocked()
	merged := config.MergeDocs(layers...)
	cfg, err := config.Merge(layers...)
	if err != nil {
		return Plan{}, nil, fmt.Errorf("%w: %w", errRefused, err)
	}
	defs, sources, err := m.definitions(ctx, cfg, true)
	if err != nil {
		return Plan{}, nil, fmt.Errorf("%w: %w", errRefused, err)
	}
	for _, s := range defs {
		if err := m.Runner.Check(ctx, s.Image); err != nil {
			if old := m.known(s.Name); old == nil || old.Image != s.Image {
				return Plan{}, nil, fmt.Errorf("%w: service %s: %w", errRefused, s.Name, err)
			}
		}
	}
	plan := Plan{Changes: config.Diff(curMerged, merged), DryRun: req.DryRun}
	hideSecrets(plan.Changes)
	if req.Key != "" {
		if _, ok, _ := config.Get(cmdline.Doc, req.Key); ok {
			plan.Overridden = append(plan.Overridden, req.Key+" (the kernel command line sets it)")
		}
	}
	for _, c := range plan.Changes {
		if isLive(c.Key) {
			plan.Live = append(plan.Live, c.Key)
		} else {
			plan.Reboot = append(plan.Reboot, c.Key)
		}
	}
	start, stop, restart := m.serviceChanges(defs, plan.Changes, cfg)
	plan.Start, plan.Stop, plan.Restart = start, stop, restart
	saved := config.Layer{Name: UserConfig, Doc: config.Copy(user.Doc)}
	commit := func() {
		n.mu.Lock()
		n.ds, n.user, n.merged, n.cfg = ds, saved, merged, cfg
		n.mu.Unlock()
		m.applyLive(ctx, old, cfg, plan, defs, sources)
	}
	return plan, commit, nil
}

// known returns the definition of a service the manager runs, or nil.
func (m *Manager) known(name string) *Service {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.svcs[name]; ok {
		s := e.Service
		return &s
	}
	return nil
}

// serviceChanges compares the new service definitions with the running
// ones: services to start (new), stop (gone), and restart (changed
// definition, io.rancher.os.reloadconfig on a config change, or listed in
// rancher.restart_services).
func (m *Manager) serviceChanges(defs []Service, changes []config.Change, cfg config.Config) (start, stop, restart []string) {
	m.mu.Lock()
	cur := map[string]Service{}
	for n, e := range m.svcs {
		cur[n] = e.Service
	}
	m.mu.Unlock()
	want := map[string]bool{}
	restartSet := map[string]bool{}
	reload := false
	for _, c := range changes {
		if !config.Under(c.Key, "rancher.services") && !config.Under(c.Key, "rancher.services_include") &&
			(config.Under(c.Key, "rancher") || c.Key == "hostname") {
			reload = true
		}
	}
	for _, s := range defs {
		want[s.Name] = true
		old, ok := cur[s.Name]
		switch {
		case !ok:
			start = append(start, s.Name)
		case old.Hash != s.Hash:
			restartSet[s.Name] = true
		case reload && s.Labels[LabelReloadConfig] == "true":
			restartSet[s.Name] = true
		}
	}
	if len(changes) > 0 {
		for _, n := range cfg.Rancher.RestartServices {
			if want[n] {
				restartSet[n] = true
			}
		}
	}
	for n := range cur {
		if !want[n] {
			stop = append(stop, n)
		}
	}
	for n := range restartSet {
		restart = append(restart, n)
	}
	sort.Strings(start)
	sort.Strings(stop)
	sort.Strings(restart)
	return start, stop, restart
}

// applyLive applies a changed config: publishes it, sets what the manager
// owns (host name, keys, sysctl, modules), and starts, stops and restarts
// services as the plan says.
func (m *Manager) applyLive(ctx context.Context, old, cfg config.Config, plan Plan, defs []Service, sources map[string]string) {
	if err := publishConfig(cfg); err != nil {
		m.problem("publish: %v", err)
	}
	has := func(prefix string) bool {
		for _, k := range plan.Live {
			if config.Under(k, prefix) {
				return true
			}
		}
		return false
	}
	if has("hostname") {
		if err := setHostname(cfg.Hostname); err != nil {
			m.problem("hostname: %v", err)
		}
	}
	if has("ssh_authorized_keys") {
		if err := AuthorizeKeys("/home/rancher", RancherUID, cfg.SSHAuthorizedKeys); err != nil {
			m.problem("ssh_authorized_keys: %v", err)
		}
	}
	if has("rancher.sysctl") {
		m.applySysctl(cfg.Rancher.Sysctl)
	}
	if has("rancher.modules") {
		m.loadModules(cfg.Rancher.Modules)
	}
	byName := map[string]Service{}
	for _, s := range defs {
		byName[s.Name] = s
	}
	if len(plan.Stop) > 0 {
		if err := m.Forget(ctx, plan.Stop); err != nil {
			m.problem("stop %v: %v", plan.Stop, err)
		}
	}
	var changed, restartOnly []string
	for _, n := range plan.Restart {
		if cur := m.known(n); cur != nil && cur.Hash != byName[n].Hash {
			changed = append(changed, n)
		} else {
			restartOnly = append(restartOnly, n)
		}
	}
	if len(changed) > 0 {
		if err := m.Forget(ctx, changed); err != nil {
			m.problem("replace %v: %v", changed, err)
		}
	}
	var add []Service
	for _, n := range append(append([]string{}, plan.Start...), changed...) {
		add = append(add, byName[n])
	}
	if len(add) > 0 {
		src := map[string]string{}
		for _, s := range add {
			src[s.Name] = sources[s.Name]
			if src[s.Name] == "" {
				src[s.Name] = "built-in"
			}
		}
		go func() {
			if err := m.Start(m.root, add, src); err != nil {
				m.problem("start %v: %v", serviceNames(add), err)
			}
		}()
	}
	for _, n := range restartOnly {
		if err := m.RestartOne(ctx, n); err != nil {
			m.problem("restart %s: %v", n, err)
		}
	}
	m.logf("config changed: %s", strings.Join(plan.Live, ", "))
}

func serviceNames(ss []Service) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.Name)
	}
	return out
}
