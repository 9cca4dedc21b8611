// Package compose turns compose YAML (rancher.services, a catalog or an
// enabled file) into the services the OS runs, checked and with their
// RancherOS labels read, and orders them for their start.
package compose

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

// The RancherOS v1 labels that give a compose service OS meaning.
const (
	LabelScope        = "io.rancher.os.scope"        // "system" for OS services
	LabelAfter        = "io.rancher.os.after"        // start after these services (comma list)
	LabelBefore       = "io.rancher.os.before"       // start before these services
	LabelDetach       = "io.rancher.os.detach"       // "false": run to completion before the next
	LabelCreateOnly   = "io.rancher.os.createonly"   // "true": create the container, never start it
	LabelReloadConfig = "io.rancher.os.reloadconfig" // "true": restart when the config changes
)

// Bind is a host path mounted into a service.
type Bind struct {
	Source, Target string
	ReadOnly       bool
}

// Service is one system service, as the runner needs it.
type Service struct {
	Name        string
	Image       string
	Entrypoint  []string
	Command     []string
	Env         []string
	Binds       []Bind
	Privileged  bool
	HostNetwork bool
	HostPID     bool
	HostIPC     bool
	HostUTS     bool
	CapAdd      []string
	CapDrop     []string
	Devices     []string
	Restart     string // no, always, on-failure, unless-stopped
	User        string
	WorkingDir  string
	ReadOnly    bool
	Tmpfs       []string
	StopSignal  string
	StopGrace   time.Duration
	Labels      map[string]string
	DependsOn   []string
	// Conditions holds depends_on conditions other than service_started:
	// service_healthy or service_completed_successfully, by dependency.
	Conditions map[string]string
	Health     *Health
	Ulimits    []Ulimit
	// CPUShares is the service's CPU weight against the others when the
	// CPUs are busy (compose's cpu_shares, 1024 a default service's share;
	// 0: the default).
	CPUShares  int64
	After      []string
	Before     []string
	Detach     bool // false: a one-shot that must finish before services after it
	CreateOnly bool
	// Hash identifies the definition: a running container with another hash
	// was made from an older definition and is replaced.
	Hash string
}

// Health is a compose healthcheck.
type Health struct {
	Test        []string // the command: CMD-SHELL's string run by /bin/sh -c, or CMD's argv
	Interval    time.Duration
	Timeout     time.Duration
	Retries     int
	StartPeriod time.Duration
}

// Ulimit is one resource limit (nofile, nproc ...).
type Ulimit struct {
	Name       string
	Soft, Hard uint64
}

// supported are the compose fields (by YAML name) the runner honours. Any
// other field that is set is refused, naming the field and the service:
// silently ignoring a field would run something other than what the user
// configured.
var supported = map[string]bool{
	"image": true, "command": true, "entrypoint": true, "environment": true,
	"volumes": true, "privileged": true, "cap_add": true, "cap_drop": true,
	"network_mode": true, "pid": true, "ipc": true, "uts": true, "devices": true,
	"restart": true, "depends_on": true, "user": true, "working_dir": true,
	"read_only": true, "tmpfs": true, "stop_signal": true, "stop_grace_period": true,
	"labels": true, "container_name": true, "healthcheck": true, "ulimits": true, "cpu_shares": true,
	"name": true, // the service's key, set by the loader
}

// Parse reads rancher.services (a map of compose service definitions) into
// services, sorted by name.
//
// A parse the image carries (LoadKnown), or one this process made before,
// is returned without parsing again.
func Parse(ctx context.Context, raw map[string]any, env map[string]string) ([]Service, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	key := Key(raw, env)
	if ss, ok := lookupKnown(key); ok {
		return ss, nil
	}
	ss, err := parse(ctx, raw, env)
	if err != nil {
		return nil, err
	}
	remember(key, ss)
	return ss, nil
}

// parse reads raw with compose-go.
func parse(ctx context.Context, raw map[string]any, env map[string]string) ([]Service, error) {
	for name, def := range raw {
		if _, ok := def.(map[string]any); !ok {
			return nil, fmt.Errorf("rancher.services.%s: want a compose service definition (a map), got %T", name, def)
		}
	}
	// compose-go changes the maps it is given (it adds the project's name
	// to the environment, and normalises the services in place): it gets
	// copies, so that the caller's config, and its key, stay as they were.
	details := types.ConfigDetails{
		WorkingDir:  "/",
		ConfigFiles: []types.ConfigFile{{Filename: "rancher.services", Config: map[string]any{"services": deepCopy(raw)}}},
		Environment: maps.Clone(env),
	}
	project, err := loader.LoadWithContext(ctx, details, func(o *loader.Options) {
		o.SetProjectName("ros", true)
		o.SkipResolveEnvironment = false
		o.ResolvePaths = false
	})
	if err != nil {
		return nil, fmt.Errorf("rancher.services: %w", err)
	}
	var out []Service
	for _, sc := range project.Services {
		s, err := convert(sc)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// unsupportedFields lists the set fields of sc that are not supported.
func unsupportedFields(sc types.ServiceConfig) []string {
	var bad []string
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if f.Anonymous && f.Type.Kind() == reflect.Struct {
				walk(v.Field(i))
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "" || name == "-" || supported[name] {
				continue
			}
			if !v.Field(i).IsZero() {
				bad = append(bad, name)
			}
		}
	}
	walk(reflect.ValueOf(sc))
	sort.Strings(bad)
	return bad
}

func convert(sc types.ServiceConfig) (Service, error) {
	where := "rancher.services." + sc.Name
	// compose-go fills a default network for services that are not on the
	// host network; that is its doing, not the user's.
	if sc.NetworkMode != "" {
		sc.Networks = nil
	}
	if len(sc.Networks) == 1 {
		if _, ok := sc.Networks["default"]; ok {
			sc.Networks = nil
		}
	}
	if bad := unsupportedFields(sc); len(bad) > 0 {
		word := "field"
		if len(bad) > 1 {
			word = "fields"
		}
		return Service{}, fmt.Errorf("%s: %s %s not supported by the system service manager (supported: %s)",
			where, word, strings.Join(bad, ", "), strings.Join(supportedList(), ", "))
	}
	if sc.Image == "" {
		return Service{}, fmt.Errorf("%s: image is required", where)
	}
	s := Service{
		Name:       sc.Name,
		Image:      sc.Image,
		Entrypoint: sc.Entrypoint,
		Command:    sc.Command,
		Privileged: sc.Privileged,
		CapAdd:     sc.CapAdd,
		CapDrop:    sc.CapDrop,
		Restart:    sc.Restart,
		User:       sc.User,
		WorkingDir: sc.WorkingDir,
		ReadOnly:   sc.ReadOnly,
		Tmpfs:      sc.Tmpfs,
		StopSignal: sc.StopSignal,
		Labels:     map[string]string(sc.Labels),
		Detach:     true,
	}
	if s.Labels == nil {
		s.Labels = map[string]string{}
	}
	if sc.StopGracePeriod != nil {
		s.StopGrace = time.Duration(*sc.StopGracePeriod)
	}
	switch sc.Restart {
	case "", "no", "always", "on-failure", "unless-stopped":
	default:
		if !strings.HasPrefix(sc.Restart, "on-failure:") {
			return Service{}, fmt.Errorf("%s: restart %q: want no, always, on-failure[:N] or unless-stopped", where, sc.Restart)
		}
	}
	for k, v := range sc.Environment {
		if v != nil {
			s.Env = append(s.Env, k+"="+*v)
		}
	}
	sort.Strings(s.Env)
	if err := hostNamespaces(&s, sc); err != nil {
		return Service{}, fmt.Errorf("%s: %w", where, err)
	}
	if err := binds(&s, sc); err != nil {
		return Service{}, fmt.Errorf("%s: %w", where, err)
	}
	for _, d := range sc.Devices {
		s.Devices = append(s.Devices, d.Source)
	}
	if err := dependencies(&s, sc); err != nil {
		return Service{}, fmt.Errorf("%s: %w", where, err)
	}
	h, err := health(sc.HealthCheck)
	if err != nil {
		return Service{}, fmt.Errorf("%s: %w", where, err)
	}
	s.Health = h
	for name, u := range sc.Ulimits {
		soft, hard := u.Soft, u.Hard
		if u.Single != 0 {
			soft, hard = u.Single, u.Single
		}
		s.Ulimits = append(s.Ulimits, Ulimit{Name: name, Soft: uint64(soft), Hard: uint64(hard)})
	}
	sort.Slice(s.Ulimits, func(i, j int) bool { return s.Ulimits[i].Name < s.Ulimits[j].Name })
	if sc.CPUShares < 0 || sc.CPUShares == 1 || sc.CPUShares > 262144 {
		return Service{}, fmt.Errorf("%s: cpu_shares %d: want 2 to 262144 (1024: a default service's share)", where, sc.CPUShares)
	}
	s.CPUShares = sc.CPUShares
	sort.Strings(s.DependsOn)
	s.After = splitList(s.Labels[LabelAfter])
	s.Before = splitList(s.Labels[LabelBefore])
	if v, ok := s.Labels[LabelDetach]; ok {
		s.Detach = v != "false"
	}
	s.CreateOnly = s.Labels[LabelCreateOnly] == "true"
	s.Hash = Rehash(s)
	return s, nil
}

// hostNamespaces reads network_mode, pid, ipc and uts: "host" or nothing.
func hostNamespaces(s *Service, sc types.ServiceConfig) error {
	for _, ns := range []struct {
		field, val string
		dst        *bool
	}{
		{"network_mode", sc.NetworkMode, &s.HostNetwork},
		{"pid", sc.Pid, &s.HostPID},
		{"ipc", sc.Ipc, &s.HostIPC},
		{"uts", sc.Uts, &s.HostUTS},
	} {
		switch ns.val {
		case "":
		case "host":
			*ns.dst = true
		default:
			return fmt.Errorf("%s %q: only \"host\" (or leaving it out) is supported", ns.field, ns.val)
		}
	}
	return nil
}

// binds reads volumes: bind mounts of absolute host paths only.
func binds(s *Service, sc types.ServiceConfig) error {
	for _, v := range sc.Volumes {
		if v.Type != types.VolumeTypeBind {
			return fmt.Errorf("volume %q: only bind mounts of host paths are supported (type %s)", v.String(), v.Type)
		}
		if !strings.HasPrefix(v.Source, "/") {
			return fmt.Errorf("volume %q: the host path must be absolute", v.String())
		}
		s.Binds = append(s.Binds, Bind{Source: v.Source, Target: v.Target, ReadOnly: v.ReadOnly})
	}
	return nil
}

// dependencies reads depends_on and its conditions.
func dependencies(s *Service, sc types.ServiceConfig) error {
	for name, dep := range sc.DependsOn {
		s.DependsOn = append(s.DependsOn, name)
		switch dep.Condition {
		case "", types.ServiceConditionStarted:
		case types.ServiceConditionHealthy, types.ServiceConditionCompletedSuccessfully:
			if s.Conditions == nil {
				s.Conditions = map[string]string{}
			}
			s.Conditions[name] = dep.Condition
		default:
			return fmt.Errorf("depends_on.%s: condition %q: want service_started, service_healthy or service_completed_successfully", name, dep.Condition)
		}
	}
	return nil
}

// health reads a healthcheck (nil when there is none, or it is disabled).
func health(hc *types.HealthCheckConfig) (*Health, error) {
	if hc == nil || hc.Disable || len(hc.Test) == 0 || hc.Test[0] == "NONE" {
		return nil, nil
	}
	h := &Health{Interval: 30 * time.Second, Timeout: 30 * time.Second, Retries: 3}
	switch hc.Test[0] {
	case "CMD":
		h.Test = hc.Test[1:]
	case "CMD-SHELL":
		if len(hc.Test) != 2 {
			return nil, fmt.Errorf("healthcheck.test: CMD-SHELL takes one string")
		}
		h.Test = []string{"/bin/sh", "-c", hc.Test[1]}
	default:
		return nil, fmt.Errorf("healthcheck.test: want [CMD, ...], [CMD-SHELL, \"...\"] or a string, got %q", hc.Test[0])
	}
	if len(h.Test) == 0 {
		return nil, fmt.Errorf("healthcheck.test: no command")
	}
	if hc.Interval != nil {
		h.Interval = time.Duration(*hc.Interval)
	}
	if hc.Timeout != nil {
		h.Timeout = time.Duration(*hc.Timeout)
	}
	if hc.Retries != nil {
		h.Retries = int(*hc.Retries)
	}
	if hc.StartPeriod != nil {
		h.StartPeriod = time.Duration(*hc.StartPeriod)
	}
	return h, nil
}

// Rehash is the hash of a definition (without its old hash): a changed
// definition (one adjusted by the config) gets a new one.
func Rehash(s Service) string {
	s.Hash = ""
	b, _ := json.Marshal(s) // a Service always marshals
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// deepCopy copies the maps and lists of a decoded YAML value.
func deepCopy[T any](v T) T {
	var out any
	switch x := any(v).(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = deepCopy(e)
		}
		out = m
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = deepCopy(e)
		}
		out = l
	default:
		return v
	}
	return out.(T)
}

func splitList(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

func supportedList() []string {
	var out []string
	for k := range supported {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
