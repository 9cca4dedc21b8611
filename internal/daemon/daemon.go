// Package daemon is the service manager, the process PID 1 runs and
// restarts: it gathers the node's config, applies what the boot needs,
// starts the services through the supervisor, serves the API, and applies
// later changes (ros config, ros service enable, the network datasources)
// live. It wires the other packages together and owns no lifecycle of its
// own but the boot's.
package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"slices"
	"time"

	"github.com/rosos/ros/config"
	"github.com/rosos/ros/init/bootlog"
	"github.com/rosos/ros/internal/api"
	"github.com/rosos/ros/internal/compose"
	"github.com/rosos/ros/internal/host"
	"github.com/rosos/ros/internal/nodeconfig"
	"github.com/rosos/ros/internal/paths"
	"github.com/rosos/ros/internal/registry"
	ctrdrunner "github.com/rosos/ros/internal/runner/containerd"
	"github.com/rosos/ros/internal/supervisor"
)

// Daemon is the service manager's state.
type Daemon struct {
	console  io.Writer
	log      *slog.Logger
	timeline *bootlog.Log
	runner   *ctrdrunner.Runner
	sup      *supervisor.Supervisor
	node     *nodeconfig.NodeConfig
	host     *host.Host
	// restarted is set when the manager started again within a boot.
	restarted bool
}

// AssessDeadline bounds how long a boot may take to get every critical
// service healthy.
const AssessDeadline = 10 * time.Minute

// Run is the service manager process: it gathers the config (layers and
// datasources), applies what the boot needs (host name, keys, sysctl,
// modules, mounts, write_files, bootcmd), starts the services, tells PID 1
// (on status) that the boot is done, reads the network datasources, runs
// runcmd, and stops the services on ctx's end.
func Run(ctx context.Context, console, logw io.Writer, status *os.File) error {
	d := &Daemon{console: console, log: slog.New(slog.NewTextHandler(logw, nil)), timeline: bootlog.New(io.Discard, "service")}
	d.host = &host.Host{Problem: d.problem, Log: d.log}
	defer d.saveTimeline()
	if _, err := os.Stat(paths.ManagerStarted); err == nil {
		d.restarted = true
	}
	// The config and the service definitions need no containerd: they are
	// read while PID 1's containerd starts, and the manager waits for its
	// socket only before its first container (bootcmd's or a service's).
	d.step("1 find the preloaded images")
	pre, err := ctrdrunner.LoadPreloaded(paths.ImagesDir)
	if err != nil {
		d.consolef("preloaded images: %v", err)
	}
	d.runner = &ctrdrunner.Runner{LogDir: paths.SystemLogDir, Preloaded: pre, RootDir: paths.RootsDir}
	if _, err := os.Stat(paths.Runtime); err == nil {
		d.runner.Runtime = paths.Runtime
	} else {
		d.consolef("%s: %v; the services run with runc", paths.Runtime, err)
	}
	d.log.Info("preloaded images", "count", len(pre), "dir", paths.ImagesDir)
	if d.restarted {
		d.log.Info("restarted: adopting the running services")
	}
	d.sup = &supervisor.Supervisor{Runner: d.runner, Console: console, Log: d.log, Timeline: d.timeline, Restarted: d.restarted}
	if err := compose.LoadKnown(paths.ParsedServices); err != nil {
		d.consolef("%v; the service definitions are parsed", err)
	}
	d.step("2 read the config")
	d.node, err = nodeconfig.Load(ctx, nodeconfig.Reporter{Problem: d.problem, Log: d.log, Valid: d.valid})
	if err != nil {
		return err
	}
	d.runner.Credentials = registry.ConfigCredentials(d.node.Config)
	d.runner.BeforeStart = func(s compose.Service, root string) {
		d.host.WriteFiles(d.node.Config().WriteFiles, s.Name, root)
	}
	cfg := d.node.Config()
	d.step("3 service definitions")
	defs, sources, err := d.definitions(ctx, cfg, false)
	if err != nil {
		return err
	}
	d.log.Info("service definitions", "services", len(defs), "compose_parses", compose.Misses())
	if !d.restarted {
		d.step("4 apply the boot config (modules, mounts, files, keys)")
		d.applyBoot(cfg, defs)
	}
	d.step("5 connect to containerd (wait for its start)")
	if err := ctrdrunner.WaitSocket(ctx, paths.ContainerdSock, 60*time.Second); err != nil {
		return err
	}
	cl, err := ctrdrunner.Connect(paths.ContainerdSock)
	if err != nil {
		return err
	}
	defer func() { _ = cl.Close() }()
	d.runner.Client = cl
	if !d.restarted {
		d.bootcmd(ctx, cfg, defs)
		if err := os.WriteFile(paths.ManagerStarted, nil, 0o644); err != nil {
			d.log.Error("marker", "path", paths.ManagerStarted, "err", err)
		}
	} else if err := host.PublishConfig(cfg); err != nil {
		d.consolef("config: %v", err)
	}
	srv := &api.Server{Backend: d, Log: d.log, RebootDelay: time.Second}
	go func() {
		if err := srv.Serve(ctx, paths.Socket); err != nil {
			d.consolef("%v", err)
		}
	}()
	go d.host.RotateLoop(ctx, paths.SystemLogDir, time.Minute)
	d.step("6 start the services")
	if err := d.sup.Start(ctx, defs, sources); err != nil {
		return err
	}
	running := 0
	for _, st := range d.sup.States() {
		if st.Status == supervisor.Running || st.Status == supervisor.Exited || st.Status == supervisor.Created {
			running++
		}
	}
	d.saveTimeline()
	var sw io.Writer
	if status != nil {
		sw = status
		fmt.Fprintf(status, `{"event":"ready","services":%d}`+"\n", running)
	}
	go func() {
		d.sup.Assess(ctx, sw, AssessDeadline)
		// The boot's work (compose files, images, the config) is
		// garbage now: give its memory back to the kernel at once.
		debug.FreeOSMemory()
	}()
	// Healthy marks come later; keep the saved timeline current a while.
	go func() {
		for i := 0; i < 20 && ctx.Err() == nil; i++ {
			time.Sleep(15 * time.Second)
			d.saveTimeline()
		}
	}()
	if !d.restarted {
		d.endOfBoot(ctx)
	}
	<-ctx.Done()
	d.log.Info("stopping services")
	d.sup.StopAll(context.WithoutCancel(ctx))
	d.sup.Wait()
	return nil
}

func (d *Daemon) saveTimeline() {
	if err := d.timeline.Save(paths.Timeline); err != nil {
		d.log.Error("boot timeline", "err", err)
	}
}

// consolef prints a line a user must see on the console, and logs it.
func (d *Daemon) consolef(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	d.log.Info(msg)
	bootlog.Console(d.console, msg)
}

// problem reports a config problem on the console and in paths.ConfigLog.
func (d *Daemon) problem(msg string) {
	d.consolef("config: %s", msg)
	if err := os.MkdirAll(filepath.Dir(paths.ConfigLog), 0o755); err == nil {
		if f, err := os.OpenFile(paths.ConfigLog, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			fmt.Fprintf(f, "%s %s\n", time.Now().Format(time.RFC3339), msg)
			f.Close()
		}
	}
}

func (d *Daemon) problemf(format string, args ...any) { d.problem(fmt.Sprintf(format, args...)) }

// mark records a step in the boot timeline.
func (d *Daemon) mark(name, step string) { d.timeline.Mark("service", name, step) }

// step records the start of one of the manager's own steps of the boot,
// which lasts until the next (ros boot analyze). A manager restarted
// after the boot records none: it is not part of the boot.
func (d *Daemon) step(name string) {
	if !d.restarted {
		d.timeline.Mark("manager", name, "")
	}
}

// valid is the check of a whole config beyond its keys: its services parse.
func (d *Daemon) valid(ctx context.Context, cfg config.Config) error {
	_, _, err := d.definitions(ctx, cfg, true)
	return err
}

// applyBoot applies the config's boot-time keys that need no container,
// before the services start.
func (d *Daemon) applyBoot(cfg config.Config, defs []compose.Service) {
	if err := host.SetHostname(cfg.Hostname); err != nil {
		d.problemf("hostname: %v", err)
	}
	if err := host.PublishConfig(cfg); err != nil {
		d.problemf("publish: %v", err)
	}
	if err := host.PrepareHome(paths.RancherHome, paths.RancherUID); err != nil {
		d.problemf("home of rancher: %v", err)
	}
	if err := host.AuthorizeKeys(paths.RancherHome, paths.RancherUID, cfg.SSHAuthorizedKeys); err != nil {
		d.problemf("ssh_authorized_keys: %v", err)
	}
	d.host.HostKeys(cfg.Rancher.SSH.Keys)
	d.host.MakeHostKeys(paths.SSHHostKeys)
	d.host.Modules(cfg.Rancher.Modules)
	d.host.Sysctl(bootSysctl(cfg.Rancher.Sysctl, defs))
	d.host.Mounts(cfg.Mounts)
	d.host.WriteFiles(cfg.WriteFiles, "", "/")
}

// bootcmd runs bootcmd and rancher.network.pre_cmds in a container, once
// containerd is up and before the services start.
func (d *Daemon) bootcmd(ctx context.Context, cfg config.Config, defs []compose.Service) {
	// bootcmd, then rancher.network.pre_cmds: the services (the network's
	// included) have not started yet.
	if body := host.Script(cfg.Bootcmd) + host.Script(host.ShellCommands(cfg.Rancher.Network.PreCmds)); body != "" {
		d.mark("bootcmd", "began")
		code, err := d.runScript(ctx, "cloud-init-bootcmd", body, defs)
		switch {
		case err != nil:
			d.problemf("bootcmd: %v", err)
		case code != 0:
			d.problemf("bootcmd: exit status %d (output in %s)", code, paths.LogPath("cloud-init-bootcmd"))
		default:
			d.log.Info("bootcmd: done")
		}
		d.mark("bootcmd", "exited")
	}
}

// bootSysctl is rancher.sysctl with what the services to start need set
// before any of them starts. Kubernetes needs IPv4 forwarding, and on
// before the user's Docker starts: a dockerd that finds it off turns it
// on itself and sets the FORWARD chain's policy to DROP, which drops the
// pods' traffic on their bridge (Kubernetes' own rules are nftables
// tables of their own, which cannot accept what another table drops).
// Whether the kubernetes service or dockerd got there first was a race at
// every boot. Kubernetes' installation guides set it at boot for the same
// reason. A value in rancher.sysctl wins.
func bootSysctl(user map[string]string, defs []compose.Service) map[string]string {
	if !slices.ContainsFunc(defs, func(s compose.Service) bool { return s.Name == "kubernetes" }) {
		return user
	}
	kv := map[string]string{"net.ipv4.ip_forward": "1"}
	maps.Copy(kv, user)
	return kv
}

// endOfBoot reads the datasources that need the network, then runs
// runcmd, the user-data scripts and the start scripts.
func (d *Daemon) endOfBoot(ctx context.Context) {
	before := d.node.Config()
	if ds, changed := d.node.ReadNetworkDatasources(ctx); changed {
		plan, err := d.change(ctx, ds)
		if err != nil {
			d.problemf("network datasources: %v; skipped", err)
		} else {
			d.log.Info("network datasources applied", "changed", len(plan.Changes), "restarted", plan.Restart, "reboot", plan.Reboot)
		}
	}
	cfg := d.node.Config()
	if !reflect.DeepEqual(before.WriteFiles, cfg.WriteFiles) {
		d.host.WriteFiles(cfg.WriteFiles, "", "/")
	}
	pending := nodeconfig.PendingScripts()
	if len(cfg.Runcmd) == 0 && len(cfg.Rancher.Network.PostCmds) == 0 && len(pending) == 0 && !anyExists(host.StartScripts) {
		return // nothing to run: no container
	}
	body := host.RuncmdScript(cfg, pending)
	defs, _, err := d.definitions(ctx, cfg, false)
	if err != nil {
		d.problemf("runcmd: %v", err)
		return
	}
	d.mark("runcmd", "began")
	code, err := d.runScript(ctx, "cloud-init-runcmd", body, defs)
	d.mark("runcmd", "exited")
	switch {
	case err != nil:
		d.problemf("runcmd: %v", err)
		return
	case code != 0:
		d.problemf("runcmd: exit status %d (output in %s)", code, paths.LogPath("cloud-init-runcmd"))
	default:
		d.log.Info("runcmd: done")
	}
	for _, p := range pending {
		if inst, err := os.ReadFile(p + ".instance"); err == nil {
			_ = config.WriteAtomic(p+".ran", inst, 0o600)
		}
	}
}

func anyExists(paths []string) bool {
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			return true
		}
	}
	return false
}
