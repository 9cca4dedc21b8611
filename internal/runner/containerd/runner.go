// Package containerd runs services as containers of system containerd,
// from the OS image's preloaded images or from containerd's image store: the
// runner (internal/runner) the OS uses.
package containerd

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/containerd/api/types/runc/options"
	ctrd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/containerd/v2/plugins"
	"github.com/containerd/errdefs"
	"github.com/containerd/platforms"
	"github.com/opencontainers/cgroups"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/rosos/ros/internal/compose"
	"github.com/rosos/ros/internal/paths"
	"github.com/rosos/ros/internal/registry"
	"github.com/rosos/ros/internal/runner"
)

// Labels the runner puts on the containers it makes.
const (
	labelService = "io.rosos.service"
	labelHash    = "io.rosos.hash"
	snapshotter  = "overlayfs"
)

// Runner runs services as containers in one containerd namespace.
type Runner struct {
	Client *ctrd.Client
	LogDir string // /var/log/system
	// Preloaded are the OS image's own service images, by name; others
	// come from containerd's image store (pulled when missing).
	Preloaded map[string]Preloaded
	// RootDir holds the roots of containers of preloaded images.
	RootDir string
	// BeforeStart, if set, is called with a new container's root (of a
	// preloaded image) before its task starts: write_files' container:.
	BeforeStart func(s compose.Service, root string)
	// Credentials, if set, are the registries' (rancher.registry_auths),
	// for images that are pulled.
	Credentials registry.Credentials
	// Runtime is the OCI runtime binary the runc v2 shim runs for new
	// containers (paths.Runtime, crun); empty: the shim's default, runc.
	Runtime string
}

// labelRoot marks a container whose root the runner mounted itself.
const labelRoot = "io.rosos.root"

// Check tells whether ref can be run: a preloaded image, one in
// containerd's store, or one that can be pulled.
func (r *Runner) Check(ctx context.Context, ref string) error {
	if _, ok := r.preloaded(ref); ok {
		return nil
	}
	_, err := r.image(ctx, ref)
	return err
}

// DefaultArgs is the command line a preloaded image runs by default
// (entrypoint and command), nil for another image.
func (r *Runner) DefaultArgs(ref string) []string {
	if p, ok := r.preloaded(ref); ok {
		return p.Args(nil, nil)
	}
	return nil
}

func (r *Runner) preloaded(ref string) (Preloaded, bool) {
	name, err := registry.NormalizeRef(ref)
	if err != nil {
		return Preloaded{}, false
	}
	p, ok := r.Preloaded[name]
	return p, ok
}

// newTask makes the supervisor's view of a containerd task: its exit comes
// as a runner.Exit.
func newTask(name string, task ctrd.Task, exit <-chan ctrd.ExitStatus, adopted bool) *runner.Task {
	ch := make(chan runner.Exit, 1)
	go func() {
		st := <-exit
		code, _, err := st.Result()
		ch <- runner.Exit{Code: code, Err: err}
	}()
	return &runner.Task{Name: name, Pid: task.Pid(), Adopted: adopted, Exited: ch}
}

func (r *Runner) image(ctx context.Context, ref string) (ctrd.Image, error) {
	name, err := registry.NormalizeRef(ref)
	if err != nil {
		return nil, err
	}
	img, err := r.Client.GetImage(ctx, name)
	if errdefs.IsNotFound(err) {
		img, err = r.Client.Pull(ctx, name, ctrd.WithPullUnpack, ctrd.WithPullSnapshotter(snapshotter),
			ctrd.WithResolver(registry.NewResolver(false, r.Credentials)))
		if err != nil {
			return nil, fmt.Errorf("image %s is not in the OS image and could not be pulled: %w", ref, err)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	if ok, err := img.IsUnpacked(ctx, snapshotter); err == nil && !ok {
		if err := img.Unpack(ctx, snapshotter); err != nil {
			return nil, fmt.Errorf("image %s: unpack: %w", ref, err)
		}
	}
	return img, nil
}

// Start runs s. A container of s that is already running with the same
// definition is adopted instead of started again; one made from another
// definition, or not running, is replaced.
func (r *Runner) Start(ctx context.Context, s compose.Service) (*runner.Task, error) {
	if t, err := r.adopt(ctx, s); err != nil || t != nil {
		return t, err
	}
	if err := r.Remove(ctx, s.Name); err != nil {
		return nil, err
	}
	// As compose does for short-syntax volumes: a missing host path is
	// made as a directory.
	for _, b := range s.Binds {
		if _, err := os.Stat(b.Source); os.IsNotExist(err) {
			if err := os.MkdirAll(b.Source, 0o755); err != nil {
				return nil, fmt.Errorf("service %s: volume %s: %w", s.Name, b.Source, err)
			}
		}
	}
	labels := map[string]string{labelService: s.Name, labelHash: s.Hash}
	var copts []ctrd.NewContainerOpts
	if p, ok := r.preloaded(s.Image); ok {
		root, err := mountRoot(filepath.Join(r.RootDir, s.Name), p, true)
		if err != nil {
			return nil, fmt.Errorf("service %s: %w", s.Name, err)
		}
		labels[labelRoot] = root
		if r.BeforeStart != nil {
			r.BeforeStart(s, root)
		}
		copts = append(copts, ctrd.WithNewSpec(specOpts(s, preloadedBase(s, p, root))...))
	} else {
		img, err := r.image(ctx, s.Image)
		if err != nil {
			return nil, err
		}
		copts = append(copts, ctrd.WithImage(img), ctrd.WithSnapshotter(snapshotter),
			ctrd.WithNewSnapshot(s.Name+"-rootfs", img),
			ctrd.WithNewSpec(specOpts(s, imageBase(s, img))...))
	}
	copts = append(copts, ctrd.WithContainerLabels(labels))
	if r.Runtime != "" {
		copts = append(copts, ctrd.WithRuntime(plugins.RuntimeRuncV2, &options.Options{BinaryName: r.Runtime}))
	}
	c, err := r.Client.NewContainer(ctx, s.Name, copts...)
	if err != nil {
		return nil, fmt.Errorf("service %s: create container: %w", s.Name, err)
	}
	if s.CreateOnly {
		return nil, nil
	}
	return r.startTask(ctx, s.Name, c)
}

func (r *Runner) startTask(ctx context.Context, name string, c ctrd.Container) (*runner.Task, error) {
	if err := os.MkdirAll(r.LogDir, 0o755); err != nil {
		return nil, err
	}
	task, err := c.NewTask(ctx, cio.LogFile(filepath.Join(r.LogDir, name+".log")))
	if err != nil {
		return nil, fmt.Errorf("service %s: create task: %w", name, err)
	}
	exit, err := task.Wait(context.WithoutCancel(ctx))
	if err != nil {
		_, _ = task.Delete(ctx)
		return nil, fmt.Errorf("service %s: %w", name, err)
	}
	if err := task.Start(ctx); err != nil {
		_, _ = task.Delete(ctx)
		return nil, fmt.Errorf("service %s: start: %w", name, err)
	}
	return newTask(name, task, exit, false), nil
}

// adopt returns the running task of s if there is one made from the same
// definition.
func (r *Runner) adopt(ctx context.Context, s compose.Service) (*runner.Task, error) {
	c, err := r.Client.LoadContainer(ctx, s.Name)
	if errdefs.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("service %s: %w", s.Name, err)
	}
	labels, err := c.Labels(ctx)
	if err != nil || labels[labelHash] != s.Hash {
		return nil, nil
	}
	task, err := c.Task(ctx, nil)
	if err != nil {
		return nil, nil
	}
	st, err := task.Status(ctx)
	if err != nil || st.Status != ctrd.Running {
		return nil, nil
	}
	exit, err := task.Wait(context.WithoutCancel(ctx))
	if err != nil {
		return nil, nil
	}
	return newTask(s.Name, task, exit, true), nil
}

// Ran reports whether a container of s made from the same definition
// exists and has no running task: it ran and ended.
func (r *Runner) Ran(ctx context.Context, s compose.Service) bool {
	c, err := r.Client.LoadContainer(ctx, s.Name)
	if err != nil {
		return false
	}
	labels, err := c.Labels(ctx)
	if err != nil || labels[labelHash] != s.Hash {
		return false
	}
	task, err := c.Task(ctx, nil)
	if err != nil {
		return true
	}
	st, err := task.Status(ctx)
	return err == nil && st.Status == ctrd.Stopped
}

// Restart starts a new task in the existing container of s.
func (r *Runner) Restart(ctx context.Context, s compose.Service) (*runner.Task, error) {
	c, err := r.Client.LoadContainer(ctx, s.Name)
	if err != nil {
		return r.Start(ctx, s)
	}
	if labels, err := c.Labels(ctx); err == nil && labels[labelRoot] != "" && !mounted(labels[labelRoot]) {
		return r.Start(ctx, s) // its root is gone: make it again
	}
	if t, err := c.Task(ctx, nil); err == nil {
		_, _ = t.Delete(ctx, ctrd.WithProcessKill)
	}
	return r.startTask(ctx, s.Name, c)
}

// Stop stops the task of name with signal sig, kills it after grace, and
// deletes the task (the container stays, so logs and state can be read).
func (r *Runner) Stop(ctx context.Context, name string, sig syscall.Signal, grace time.Duration) error {
	c, err := r.Client.LoadContainer(ctx, name)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	task, err := c.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	exit, err := task.Wait(ctx)
	if err != nil {
		return err
	}
	if err := task.Kill(ctx, sig); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("service %s: signal: %w", name, err)
	}
	select {
	case <-exit:
	case <-time.After(grace):
		_ = task.Kill(ctx, syscall.SIGKILL, ctrd.WithKillAll)
		select {
		case <-exit:
		case <-time.After(10 * time.Second):
		}
	}
	_, err = task.Delete(ctx, ctrd.WithProcessKill)
	if err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("service %s: delete task: %w", name, err)
	}
	return nil
}

// Remove deletes the container of name, its task and its snapshot.
func (r *Runner) Remove(ctx context.Context, name string) error {
	c, err := r.Client.LoadContainer(ctx, name)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if t, err := c.Task(ctx, nil); err == nil {
		_, _ = t.Delete(ctx, ctrd.WithProcessKill)
	}
	labels, _ := c.Labels(ctx)
	if err := c.Delete(ctx, ctrd.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("service %s: remove container: %w", name, err)
	}
	if root := labels[labelRoot]; root != "" {
		if err := unmountRoot(filepath.Dir(root)); err != nil {
			return fmt.Errorf("service %s: %w", name, err)
		}
	}
	return nil
}

// imageBase is the start of the spec of a container of an image in
// containerd's store: its config, and the service's command line.
func imageBase(s compose.Service, img ctrd.Image) []oci.SpecOpts {
	opts := []oci.SpecOpts{oci.WithDefaultSpecForPlatform(platforms.DefaultString()), oci.WithImageConfig(img)}
	switch {
	case len(s.Entrypoint) > 0:
		opts = append(opts, oci.WithProcessArgs(append(append([]string{}, s.Entrypoint...), s.Command...)...))
	case len(s.Command) > 0:
		opts = append(opts, oci.WithImageConfigArgs(img, s.Command))
	}
	return opts
}

// preloadedBase is the same for a preloaded image, on the root mounted at
// root.
func preloadedBase(s compose.Service, p Preloaded, root string) []oci.SpecOpts {
	opts := []oci.SpecOpts{oci.WithDefaultSpecForPlatform(platforms.DefaultString()), oci.WithRootFSPath(root),
		oci.WithProcessArgs(p.Args(s.Entrypoint, s.Command)...)}
	if len(p.Env) > 0 {
		opts = append(opts, oci.WithEnv(p.Env))
	}
	if p.WorkingDir != "" {
		opts = append(opts, oci.WithProcessCwd(p.WorkingDir))
	}
	if p.User != "" {
		opts = append(opts, oci.WithUser(p.User))
	}
	return opts
}

// shimGroup is the OCI annotation by which containerd's runc v2 shim
// groups containers: every service shares one shim process (as a
// Kubernetes pod's containers do) instead of one each, about 10 MB of
// memory per service saved. A service's task still exits, and is
// restarted, on its own.
const shimGroup = "io.containerd.runc.v2.group"

// ShimGroupName is the value of shimGroup on every service.
const ShimGroupName = "rosos-system"

func specOpts(s compose.Service, opts []oci.SpecOpts) []oci.SpecOpts {
	opts = append(opts, oci.WithAnnotations(map[string]string{shimGroup: ShimGroupName}))
	// containerd 2's default spec has no /sys/fs/cgroup; services get it
	// as Docker gives it (read-only, read-write when privileged), in the
	// host's cgroup namespace so an engine in a service (docker) can make
	// its containers' cgroups.
	opts = append(opts, oci.WithMounts([]specs.Mount{{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup",
		Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}}}))
	if len(s.Env) > 0 {
		opts = append(opts, oci.WithEnv(s.Env))
	}
	var mounts []specs.Mount
	for _, b := range s.Binds {
		o := []string{"rbind", "rw"}
		if b.ReadOnly {
			o[1] = "ro"
		}
		mounts = append(mounts, specs.Mount{Type: "bind", Source: b.Source, Destination: b.Target, Options: o})
	}
	for _, t := range s.Tmpfs {
		target, o, _ := strings.Cut(t, ":")
		opt := []string{"nosuid", "nodev"}
		if o != "" {
			opt = append(opt, strings.Split(o, ",")...)
		}
		mounts = append(mounts, specs.Mount{Type: "tmpfs", Source: "tmpfs", Destination: target, Options: opt})
	}
	if len(mounts) > 0 {
		opts = append(opts, oci.WithMounts(mounts))
	}
	if s.Privileged {
		opts = append(opts, oci.WithPrivileged, oci.WithAllDevicesAllowed, oci.WithHostDevices,
			oci.WithWriteableSysfs, oci.WithWriteableCgroupfs)
	}
	if s.HostNetwork {
		opts = append(opts, oci.WithHostNamespace(specs.NetworkNamespace))
		// The host's hosts file and resolv.conf, read-only, unless the
		// service binds them itself (the network service writes resolv.conf).
		if !bindsTarget(s, "/etc/hosts") {
			opts = append(opts, oci.WithHostHostsFile)
		}
		if !bindsTarget(s, "/etc/resolv.conf") {
			opts = append(opts, oci.WithHostResolvconf)
		}
	}
	if s.HostPID {
		opts = append(opts, oci.WithHostNamespace(specs.PIDNamespace))
	}
	if s.HostIPC {
		opts = append(opts, oci.WithHostNamespace(specs.IPCNamespace))
	}
	if s.HostUTS {
		opts = append(opts, oci.WithHostNamespace(specs.UTSNamespace))
	} else {
		opts = append(opts, oci.WithHostname(s.Name))
	}
	if len(s.CapAdd) > 0 {
		opts = append(opts, oci.WithAddedCapabilities(capNames(s.CapAdd)))
	}
	if len(s.CapDrop) > 0 {
		opts = append(opts, oci.WithDroppedCapabilities(capNames(s.CapDrop)))
	}
	for _, d := range s.Devices {
		parts := strings.Split(d, ":")
		host, ctr, perm := parts[0], parts[0], "rwm"
		if len(parts) > 1 {
			ctr = parts[1]
		}
		if len(parts) > 2 {
			perm = parts[2]
		}
		opts = append(opts, oci.WithDevices(host, ctr, perm))
	}
	if s.User != "" {
		opts = append(opts, oci.WithUser(s.User))
	}
	if s.WorkingDir != "" {
		opts = append(opts, oci.WithProcessCwd(s.WorkingDir))
	}
	if s.ReadOnly {
		opts = append(opts, oci.WithRootFSReadonly())
	}
	if s.CPUShares > 0 {
		opts = append(opts, withCPUWeight(uint64(s.CPUShares)))
	}
	if len(s.Ulimits) > 0 {
		opts = append(opts, withRlimits(s.Ulimits))
	}
	// As Docker does (containerd's default spec says otherwise): setuid
	// programs work, so sudo does in the console.
	opts = append(opts, withNoNewPrivileges(false))
	return opts
}

func bindsTarget(s compose.Service, target string) bool {
	for _, b := range s.Binds {
		if b.Target == target {
			return true
		}
	}
	return false
}

// withCPUWeight gives the container's cgroup the cpu.weight compose's
// cpu_shares stands for, by the conversion runc 1.4 makes (1024 is 100, the
// default), written as cgroup v2's own key so that every runtime sets the
// same weight: crun still converts shares linearly (1024 to 39).
func withCPUWeight(shares uint64) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		if s.Linux == nil {
			s.Linux = &specs.Linux{}
		}
		if s.Linux.Resources == nil {
			s.Linux.Resources = &specs.LinuxResources{}
		}
		if s.Linux.Resources.Unified == nil {
			s.Linux.Resources.Unified = map[string]string{}
		}
		s.Linux.Resources.Unified["cpu.weight"] = strconv.FormatUint(cgroups.ConvertCPUSharesToCgroupV2Value(shares), 10)
		return nil
	}
}

func withNoNewPrivileges(on bool) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, spec *oci.Spec) error {
		if spec.Process == nil {
			spec.Process = &specs.Process{}
		}
		spec.Process.NoNewPrivileges = on
		return nil
	}
}

func withRlimits(us []compose.Ulimit) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, spec *oci.Spec) error {
		if spec.Process == nil {
			spec.Process = &specs.Process{}
		}
		for _, u := range us {
			spec.Process.Rlimits = append(spec.Process.Rlimits, specs.POSIXRlimit{
				Type: "RLIMIT_" + strings.ToUpper(u.Name), Soft: u.Soft, Hard: u.Hard})
		}
		return nil
	}
}

func capNames(caps []string) []string {
	out := make([]string, len(caps))
	for i, c := range caps {
		c = strings.ToUpper(c)
		if !strings.HasPrefix(c, "CAP_") && c != "ALL" {
			c = "CAP_" + c
		}
		out[i] = c
	}
	return out
}

// Exec runs args in the running container of name, with the given streams
// (nil for none), and returns its exit status.
func (r *Runner) Exec(ctx context.Context, name string, args []string, stdin io.Reader, stdout, stderr io.Writer, tty bool) (uint32, error) {
	c, err := r.Client.LoadContainer(ctx, name)
	if err != nil {
		return 0, fmt.Errorf("service %s: %w", name, err)
	}
	task, err := c.Task(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("service %s: %w", name, runner.ErrNotRunning)
	}
	spec, err := c.Spec(ctx)
	if err != nil {
		return 0, err
	}
	pspec := *spec.Process
	pspec.Args = args
	pspec.Terminal = tty
	id := fmt.Sprintf("exec-%d", time.Now().UnixNano())
	var opts []cio.Opt
	if stdin != nil || stdout != nil || stderr != nil {
		if stdout == nil {
			stdout = io.Discard
		}
		if stderr == nil {
			stderr = io.Discard
		}
		// FIFOs under /run, which the console shares with the host, so the
		// shim finds them whoever asks.
		opts = append(opts, cio.WithStreams(stdin, stdout, stderr), cio.WithFIFODir(paths.FIFODir))
		if tty {
			opts = append(opts, cio.WithTerminal)
		}
	}
	creator := cio.NullIO
	if len(opts) > 0 {
		creator = cio.NewCreator(opts...)
	}
	p, err := task.Exec(ctx, id, &pspec, creator)
	if err != nil {
		return 0, fmt.Errorf("service %s: exec %s: %w", name, strings.Join(args, " "), err)
	}
	defer func() { _, _ = p.Delete(context.WithoutCancel(ctx)) }()
	exit, err := p.Wait(ctx)
	if err != nil {
		return 0, err
	}
	if err := p.Start(ctx); err != nil {
		return 0, fmt.Errorf("service %s: exec %s: %w", name, strings.Join(args, " "), err)
	}
	select {
	case st := <-exit:
		if p.IO() != nil {
			p.IO().Wait()
		}
		code, _, err := st.Result()
		return code, err
	case <-ctx.Done():
		_ = p.Kill(context.WithoutCancel(ctx), syscall.SIGKILL)
		return 0, ctx.Err()
	}
}

// WaitSocket waits until sock accepts a connection: system containerd is
// serving. The manager starts beside containerd and waits here, polling
// often, rather than letting gRPC find the socket with its reconnect
// back-off (a second at first).
func WaitSocket(ctx context.Context, sock string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var d net.Dialer
	for {
		c, err := d.DialContext(ctx, "unix", sock)
		if err == nil {
			return c.Close()
		}
		if ctx.Err() != nil {
			return fmt.Errorf("wait for system containerd at %s: %w", sock, ctx.Err())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("system containerd at %s did not answer in %s: %w", sock, timeout, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Connect connects to system containerd in the system namespace.
func Connect(sock string) (*ctrd.Client, error) {
	c, err := ctrd.New(sock, ctrd.WithDefaultNamespace(paths.ContainerdNamespace), ctrd.WithTimeout(30*time.Second))
	if err != nil {
		return nil, fmt.Errorf("connect to system containerd at %s: %w", sock, err)
	}
	return c, nil
}

var _ runner.Runner = (*Runner)(nil)
