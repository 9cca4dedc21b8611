package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/rosos/ros/client"
	"github.com/rosos/ros/config"
	"github.com/rosos/ros/internal/api"
	"github.com/rosos/ros/internal/compose"
	"github.com/rosos/ros/internal/nodeconfig"
	"github.com/rosos/ros/internal/paths"
	"github.com/rosos/ros/internal/registry"
	"github.com/rosos/ros/internal/slots"
	"github.com/rosos/ros/internal/supervisor"
	"github.com/rosos/ros/services"
)

// The service manager is what the API serves.
var _ api.Backend = (*Daemon)(nil)

// notFound makes the supervisor's "no such service" the API's 404.
func notFound(err error) error {
	if errors.Is(err, supervisor.ErrUnknown) {
		return fmt.Errorf("%w (%w)", err, api.ErrNotFound)
	}
	return err
}

// Services lists the services and the catalog's services not enabled.
func (d *Daemon) Services() client.ServiceList {
	var out client.ServiceList
	known := map[string]bool{}
	for _, st := range d.sup.States() {
		known[st.Name] = true
		out.Services = append(out.Services, client.Service{Name: st.Name, Image: st.Image, Source: st.Source,
			Status: string(st.Status), Health: string(st.Health), Pid: st.Pid, Restarts: st.Restarts, Since: st.Since,
			ExitCode: st.ExitCode, LastErr: st.LastErr})
	}
	for _, n := range services.Names() {
		if !known[n] {
			out.Catalog = append(out.Catalog, n)
		}
	}
	return out
}

// Action is start, stop, restart or rm of one service.
func (d *Daemon) Action(ctx context.Context, name, action string) error {
	var err error
	switch action {
	case "start":
		err = d.sup.StartOne(name)
	case "stop":
		err = d.sup.StopOne(ctx, name)
	case "restart":
		err = d.sup.RestartOne(ctx, name)
	case "rm":
		err = d.sup.RemoveOne(ctx, name)
	default:
		err = fmt.Errorf("unknown action %q (start, stop, restart, rm)", action)
	}
	return notFound(err)
}

// Up starts the named services, or every known one.
func (d *Daemon) Up(_ context.Context, names []string) ([]string, error) {
	if len(names) == 0 {
		for _, s := range d.sup.States() {
			names = append(names, s.Name)
		}
	}
	var errs []error
	for _, n := range names {
		if err := d.sup.StartOne(n); err != nil {
			errs = append(errs, err)
		}
	}
	return names, notFound(errors.Join(errs...))
}

// Enable validates the service's compose document (fields, names, and
// that each image is present or can be pulled) before anything is changed;
// only then is the file stored, services_include set, and the service
// started.
func (d *Daemon) Enable(ctx context.Context, req client.EnableRequest) (client.Enabled, error) {
	src, err := compose.ResolveSource(ctx, req.Ref, req.Name, req.Content)
	if err != nil {
		return client.Enabled{}, err
	}
	if !compose.ValidName.MatchString(src.Name) {
		return client.Enabled{}, fmt.Errorf("service name %q: want lower-case letters, digits, '.', '_' and '-'", src.Name)
	}
	defs, err := compose.ParseDoc(ctx, req.Ref, src.Content, serviceEnv(d.node.Config()))
	if err != nil {
		return client.Enabled{}, err
	}
	for _, s := range defs {
		if _, ok := d.sup.Definition(s.Name); ok {
			return client.Enabled{}, fmt.Errorf("%s: service %s already exists", req.Ref, s.Name)
		}
		if err := d.runner.Check(ctx, s.Image); err != nil {
			return client.Enabled{}, fmt.Errorf("%s: service %s: %w", req.Ref, s.Name, err)
		}
	}
	if src.Kind != "catalog" {
		if err := writeIncluded(src.Name, src.Content); err != nil {
			return client.Enabled{}, err
		}
	}
	if err := setInclude(src.Name, true); err != nil {
		return client.Enabled{}, err
	}
	d.node.RefreshUser()
	sources := map[string]string{}
	for _, s := range defs {
		sources[s.Name] = src.Kind
	}
	if err := d.sup.Add(defs, sources); err != nil {
		return client.Enabled{}, err
	}
	return client.Enabled{Enabled: src.Name, Services: serviceNames(defs)}, nil
}

// Disable turns an enabled service off and removes its containers.
func (d *Daemon) Disable(ctx context.Context, name string) (client.Enabled, error) {
	doc, _, err := compose.Included(name)
	if err != nil {
		return client.Enabled{}, fmt.Errorf("%s is not an enabled service (built-in services are stopped with `ros service stop`)", name)
	}
	defs, err := compose.ParseDoc(ctx, name, doc, serviceEnv(d.node.Config()))
	if err != nil {
		return client.Enabled{}, err
	}
	if err := setInclude(name, false); err != nil {
		return client.Enabled{}, err
	}
	d.node.RefreshUser()
	names := serviceNames(defs)
	if err := d.sup.Forget(ctx, names); err != nil {
		return client.Enabled{}, err
	}
	return client.Enabled{Disabled: name, Services: names}, nil
}

// Export returns the user's config, or the whole (full); private keys only
// with private.
func (d *Daemon) Export(full, private bool) map[string]any { return d.node.Export(full, private) }

// Get reads one key of the merged config; registry credentials never.
func (d *Daemon) Get(key string) (client.ConfigValue, error) {
	if nodeconfig.IsSecret(key) {
		return client.ConfigValue{}, fmt.Errorf("%s: registry credentials are never printed (they are in %s, readable by root only)", key, paths.UserConfig)
	}
	v, ok, err := config.Get(d.node.Merged(), key)
	if err != nil {
		return client.ConfigValue{}, err
	}
	if m, isMap := v.(map[string]any); isMap && strings.HasPrefix(config.RegistryAuthsKey, key+".") {
		// A key above the credentials (rancher): shown without them.
		m = config.Copy(m)
		_ = config.Set(m, strings.TrimPrefix(config.RegistryAuthsKey, key+"."), nil)
		v = m
	}
	return client.ConfigValue{Value: v, Set: ok}, nil
}

// Slots describes both OS slots.
func (d *Daemon) Slots() ([]client.Slot, error) { return slots.List() }

// Upgrade writes an OS image (an archive, or an image pulled through
// system containerd) into the passive slot.
func (d *Daemon) Upgrade(ctx context.Context, req client.UpgradeRequest, out io.Writer) (string, error) {
	cfg := d.node.Config()
	if req.File == "" && req.Image == "" {
		req.Image = cfg.Rancher.Upgrade.Image // rancher.upgrade.image, as in v1
	}
	keys := cfg.Rancher.Upgrade.PublicKeys
	if (req.File == "") == (req.Image == "") {
		return "", errors.New("give the OS image as --file ARCHIVE or --image REF (one of them)")
	}
	if req.File != "" {
		return slots.Upgrade(ctx, req, keys, out)
	}
	img, sigs, cleanup, err := registry.PullArchive(ctx, d.runner.Client, req.Image, req.PlainHTTP, d.runner.Credentials, out)
	if err != nil {
		return "", err
	}
	defer cleanup()
	return slots.UpgradeFrom(ctx, img, req.Image, req, slots.Trust{Keys: keys, Signatures: sigs}, out)
}

// Rollback makes the other slot boot next.
func (d *Daemon) Rollback() (string, error) { return slots.Rollback() }

// Install writes the OS to a disk.
func (d *Daemon) Install(ctx context.Context, req client.InstallRequest, out io.Writer) (string, error) {
	return req.Device, slots.Install(ctx, req, out)
}

// Reboot asks PID 1 for a clean reboot (SIGTERM).
func (d *Daemon) Reboot() {
	if err := unix.Kill(1, unix.SIGTERM); err != nil {
		d.log.Error("reboot", "err", err)
	}
}
