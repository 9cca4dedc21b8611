package daemon

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sort"

	"github.com/rosos/ros/client"
	"github.com/rosos/ros/config"
	"github.com/rosos/ros/internal/compose"
	"github.com/rosos/ros/internal/host"
	"github.com/rosos/ros/internal/nodeconfig"
	"github.com/rosos/ros/internal/paths"
)

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

// Reconfigure changes the user's config, checks the result whole (keys,
// types, values, and that every service still parses), writes it
// atomically, and applies what can be applied live. With DryRun it only
// says what it would do. On any error nothing is changed.
func (d *Daemon) Reconfigure(ctx context.Context, req client.ReconfigureRequest) (client.Plan, error) {
	defer d.node.BeginChange()()
	// A change of the user's file: made to what is on disk, under its
	// lock (config.UpdateFile), so that a writer in another process (or
	// ros service enable) is never overwritten with an older copy.
	var plan client.Plan
	var commit func()
	var changeErr error // the change's own error, passed on as it is
	err := config.UpdateFile(paths.UserConfig, func(doc map[string]any) (bool, error) {
		plan, commit, changeErr = d.changeUser(ctx, req, doc)
		return changeErr == nil && !req.DryRun, changeErr
	})
	if changeErr != nil {
		return client.Plan{}, changeErr
	}
	if err != nil {
		return client.Plan{}, fmt.Errorf("write %s: %w (nothing changed)", paths.UserConfig, err)
	}
	if !req.DryRun {
		commit()
	}
	return plan, nil
}

// change applies new datasource layers (read at boot from the network),
// the user's layer as it is.
func (d *Daemon) change(ctx context.Context, ds []config.Layer) (client.Plan, error) {
	defer d.node.BeginChange()()
	plan, commit, err := d.plan(ctx, client.ReconfigureRequest{}, d.node.User(), ds)
	if err != nil {
		return client.Plan{}, err
	}
	commit()
	return plan, nil
}

// changeUser makes req's change to doc, the user's document as stored,
// and plans it.
func (d *Daemon) changeUser(ctx context.Context, req client.ReconfigureRequest, doc map[string]any) (client.Plan, func(), error) {
	user := config.Layer{Name: paths.UserConfig, Doc: doc}
	switch {
	case req.Key != "":
		var v any
		if !req.Unset {
			var err error
			if v, err = config.ParseValue(req.Value); err != nil {
				return client.Plan{}, nil, fmt.Errorf("%s: %w", req.Key, err)
			}
		}
		if err := config.Set(user.Doc, req.Key, v); err != nil {
			return client.Plan{}, nil, err
		}
	case req.Doc != "":
		l, err := config.ParseDoc("the document", []byte(req.Doc))
		if err != nil {
			return client.Plan{}, nil, err
		}
		merged := config.MergeDocs(user, l)
		clear(doc)
		maps.Copy(doc, merged)
	default:
		return client.Plan{}, nil, errors.New("nothing to change: give a key and value, or a document")
	}
	return d.plan(ctx, req, user, d.node.Datasources())
}

// errRefused marks a change refused for what it is.
var errRefused = errors.New("refused, nothing changed")

// plan checks the config with the user's layer user and the datasources'
// ds whole (keys, types, values, and that every service still parses and
// has its image), says what the change does, and returns the commit that
// makes it the node's and applies what can be applied live, for the caller
// to call once the user's file is written.
func (d *Daemon) plan(ctx context.Context, req client.ReconfigureRequest, user config.Layer, ds []config.Layer) (client.Plan, func(), error) {
	p, err := d.node.Propose(user, ds)
	if err != nil {
		return client.Plan{}, nil, fmt.Errorf("%w: %w", errRefused, err)
	}
	defs, sources, err := d.definitions(ctx, p.Config, true)
	if err != nil {
		return client.Plan{}, nil, fmt.Errorf("%w: %w", errRefused, err)
	}
	for _, s := range defs {
		if err := d.runner.Check(ctx, s.Image); err != nil {
			if old, ok := d.sup.Definition(s.Name); !ok || old.Image != s.Image {
				return client.Plan{}, nil, fmt.Errorf("%w: service %s: %w", errRefused, s.Name, err)
			}
		}
	}
	plan := client.Plan{Changes: config.Diff(p.OldMerged, p.Merged), DryRun: req.DryRun}
	nodeconfig.HideSecrets(plan.Changes)
	if req.Key != "" {
		if _, ok, _ := config.Get(d.node.Cmdline().Doc, req.Key); ok {
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
	plan.Start, plan.Stop, plan.Restart = serviceChanges(d.sup.Definitions(), defs, plan.Changes, p.Config)
	commit := func() {
		d.node.Commit(p)
		d.applyLive(ctx, p.Config, plan, defs, sources)
	}
	return plan, commit, nil
}

// serviceChanges compares the new service definitions with the running
// ones (cur): services to start (new), stop (gone), and restart (changed
// definition, io.rancher.os.reloadconfig on a config change, or listed in
// rancher.restart_services).
func serviceChanges(cur map[string]compose.Service, defs []compose.Service, changes []config.Change, cfg config.Config) (start, stop, restart []string) {
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
		case reload && s.Labels[compose.LabelReloadConfig] == "true":
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
func (d *Daemon) applyLive(ctx context.Context, cfg config.Config, plan client.Plan, defs []compose.Service, sources map[string]string) {
	if err := host.PublishConfig(cfg); err != nil {
		d.problemf("publish: %v", err)
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
		if err := host.SetHostname(cfg.Hostname); err != nil {
			d.problemf("hostname: %v", err)
		}
	}
	if has("ssh_authorized_keys") {
		if err := host.AuthorizeKeys(paths.RancherHome, paths.RancherUID, cfg.SSHAuthorizedKeys); err != nil {
			d.problemf("ssh_authorized_keys: %v", err)
		}
	}
	if has("rancher.sysctl") {
		d.host.Sysctl(cfg.Rancher.Sysctl)
	}
	if has("rancher.modules") {
		d.host.Modules(cfg.Rancher.Modules)
	}
	byName := map[string]compose.Service{}
	for _, s := range defs {
		byName[s.Name] = s
	}
	if len(plan.Stop) > 0 {
		if err := d.sup.Forget(ctx, plan.Stop); err != nil {
			d.problemf("stop %v: %v", plan.Stop, err)
		}
	}
	var changed, restartOnly []string
	for _, n := range plan.Restart {
		if cur, ok := d.sup.Definition(n); ok && cur.Hash != byName[n].Hash {
			changed = append(changed, n)
		} else {
			restartOnly = append(restartOnly, n)
		}
	}
	if len(changed) > 0 {
		if err := d.sup.Forget(ctx, changed); err != nil {
			d.problemf("replace %v: %v", changed, err)
		}
	}
	var add []compose.Service
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
			if err := d.sup.Add(add, src); err != nil {
				d.problemf("start %v: %v", serviceNames(add), err)
			}
		}()
	}
	for _, n := range restartOnly {
		if err := d.sup.RestartOne(ctx, n); err != nil {
			d.problemf("restart %s: %v", n, err)
		}
	}
	d.log.Info("config changed", "live", plan.Live)
}

func serviceNames(ss []compose.Service) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.Name)
	}
	return out
}
