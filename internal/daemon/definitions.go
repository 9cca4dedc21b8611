package daemon

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/rosos/ros/config"
	"github.com/rosos/ros/internal/compose"
	"github.com/rosos/ros/internal/slots"
	"github.com/rosos/ros/services"
)

// definitions turns a config into the services to run: rancher.services,
// the services turned on by rancher.services_include, and what other keys
// say of the built-in ones (rancher.docker for docker, rancher.ssh and the
// proxies for the console). With strict, an included service that fails to
// parse is an error; otherwise it is reported and left out.
func (d *Daemon) definitions(ctx context.Context, cfg config.Config, strict bool) ([]compose.Service, map[string]string, error) {
	env := serviceEnv(cfg)
	defs, err := compose.Parse(ctx, cfg.Rancher.Services, env)
	if err != nil {
		return nil, nil, err
	}
	sources := map[string]string{}
	inc, err := d.included(ctx, cfg, env, sources, strict)
	if err != nil {
		return nil, nil, err
	}
	defs = append(defs, inc...)
	for i := range defs {
		if err := d.adjust(&defs[i], cfg); err != nil {
			return nil, nil, err
		}
	}
	return defs, sources, nil
}

// serviceEnv is what ${VAR} in service definitions may use.
func serviceEnv(cfg config.Config) map[string]string {
	return ServiceEnv(cfg, slots.RunningVersion())
}

// ServiceEnv is what ${VAR} in the service definitions of an OS of version
// may use: ROS_VERSION and rancher.environment.
func ServiceEnv(cfg config.Config, version string) map[string]string {
	env := map[string]string{"ROS_VERSION": version}
	for k, v := range cfg.Rancher.Environment {
		env[k] = v
	}
	return env
}

// adjust applies rancher.docker, rancher.ssh and the proxy settings to the
// built-in services they are about, and gives the service a new hash when
// they changed it (so a running one is replaced).
func (d *Daemon) adjust(s *compose.Service, cfg config.Config) error {
	net := cfg.Rancher.Network
	proxy := func() {
		for k, v := range map[string]string{"HTTP_PROXY": net.HTTPProxy, "HTTPS_PROXY": net.HTTPSProxy, "NO_PROXY": net.NoProxy} {
			if v != "" {
				s.Env = append(s.Env, k+"="+v, strings.ToLower(k)+"="+v)
			}
		}
	}
	changed := false
	switch s.Name {
	case "docker":
		dk := cfg.Rancher.Docker
		var flags []string
		if dk.StorageDriver != "" {
			flags = append(flags, "--storage-driver="+dk.StorageDriver)
		}
		if dk.RegistryMirror != "" {
			flags = append(flags, "--registry-mirror="+dk.RegistryMirror)
		}
		for _, r := range dk.InsecureRegistry {
			flags = append(flags, "--insecure-registry="+r)
		}
		if dk.LogDriver != "" {
			flags = append(flags, "--log-driver="+dk.LogDriver)
		}
		for _, k := range slices.Sorted(maps.Keys(dk.LogOpts)) {
			flags = append(flags, "--log-opt="+k+"="+dk.LogOpts[k])
		}
		flags = append(flags, dk.ExtraArgs...)
		if len(dk.Args) > 0 || len(flags) > 0 {
			base := dk.Args
			if len(base) == 0 {
				base = s.Command
				if len(base) == 0 && len(s.Entrypoint) == 0 {
					if d.runner != nil {
						base = d.runner.DefaultArgs(s.Image)
					}
				}
			}
			s.Command = append(append([]string{}, base...), flags...)
			if len(dk.Args) > 0 {
				s.Entrypoint = nil
			}
			changed = true
		}
		s.Env = append(s.Env, dk.Environment...)
		proxy()
		changed = changed || len(dk.Environment) > 0 || net.HTTPProxy != "" || net.HTTPSProxy != "" || net.NoProxy != ""
	case "kubernetes":
		s.Command, s.Env = kubernetesArgs(cfg.Rancher.Kubernetes, s.Env)
		proxy()
		changed = true
	case "console":
		if p := cfg.Rancher.SSH.Port; p != 0 {
			s.Env = append(s.Env, "ROS_SSH_PORT="+strconv.Itoa(p))
			changed = true
		}
		if a := cfg.Rancher.SSH.ListenAddress; a != "" {
			s.Env = append(s.Env, "ROS_SSH_LISTEN="+a)
			changed = true
		}
		proxy()
		changed = changed || net.HTTPProxy != "" || net.HTTPSProxy != "" || net.NoProxy != ""
	}
	if changed {
		s.Hash = compose.Rehash(*s)
	}
	return nil
}

// included parses the services turned on by rancher.services_include.
// With strict, one that fails is an error; else it is reported and skipped.
func (d *Daemon) included(ctx context.Context, cfg config.Config, env map[string]string, sources map[string]string, strict bool) ([]compose.Service, error) {
	var names []string
	for n, on := range cfg.Rancher.ServicesInclude {
		if on {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	var out []compose.Service
	for _, n := range names {
		doc, kind, err := compose.Included(n)
		if err == nil {
			var defs []compose.Service
			defs, err = compose.ParseDoc(ctx, "services_include."+n, doc, env)
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
		d.problemf("%v; skipped", err)
	}
	return out, nil
}

// kubernetesArgs turns rancher.kubernetes into kube's command line (k3s's
// flags by the same names: node_ip is --node-ip) and the token into
// KUBE_TOKEN, so that it is not on a command line.
func kubernetesArgs(k config.Kubernetes, env []string) ([]string, []string) {
	role := k.Role
	if role == "" {
		role = "server"
	}
	args := []string{role}
	flag := func(name, v string) {
		if v != "" {
			args = append(args, "--"+name+"="+v)
		}
	}
	flag("server", k.ServerURL)
	flag("token-file", k.TokenFile)
	flag("node-name", k.NodeName)
	flag("node-ip", k.NodeIP)
	for _, l := range k.NodeLabels {
		flag("node-label", l)
	}
	for _, t := range k.NodeTaints {
		flag("node-taint", t)
	}
	flag("cluster-cidr", k.ClusterCIDR)
	flag("service-cidr", k.ServiceCIDR)
	flag("cluster-dns", k.ClusterDNS)
	for _, san := range k.TLSSAN {
		flag("tls-san", san)
	}
	flag("datastore", k.Datastore)
	flag("proxy-mode", k.ProxyMode)
	flag("flannel-backend", k.FlannelBackend)
	for _, comp := range config.KubernetesComponents {
		for _, a := range k.ExtraArgs[comp] {
			flag(comp+"-arg", strings.TrimLeft(a, "-"))
		}
	}
	if k.Token != "" {
		env = append(env, "KUBE_TOKEN="+k.Token)
	}
	return args, env
}

// KnownInputs are the definitions an OS image of version with the config
// cfg (its own layer) parses at boot: rancher.services and each catalog
// service, with the environment they get. The build parses them ahead
// (ros-build parsed, compose.WriteKnown).
func KnownInputs(cfg config.Config, version string) ([]compose.Input, error) {
	env := ServiceEnv(cfg, version)
	ins := []compose.Input{{Raw: cfg.Rancher.Services, Env: env}}
	for _, n := range services.Names() {
		doc, _ := services.Doc(n)
		raw, err := compose.DocServices("services_include."+n, doc)
		if err != nil {
			return nil, err
		}
		ins = append(ins, compose.Input{Raw: raw, Env: env})
	}
	return ins, nil
}
