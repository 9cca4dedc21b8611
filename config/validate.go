package config

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

var hostnameRE = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9-]{0,62})(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,62}))*$`)

// Validate checks what the types alone cannot: values that must be
// addresses, paths, known names. Each problem names its key path.
func (c Config) Validate() error {
	var p problems
	if c.Hostname != "" && (len(c.Hostname) > 253 || !hostnameRE.MatchString(c.Hostname)) {
		p.bad("hostname", "%q is not a valid host name (letters, digits, '-', dots between labels)", c.Hostname)
	}
	c.validateFiles(&p)
	for k := range c.Rancher.Sysctl {
		if strings.Contains(k, "..") || strings.ContainsAny(k, "/ ") || k == "" {
			p.bad("rancher.sysctl."+k, "not a kernel parameter name (such as net.ipv4.ip_forward)")
		}
	}
	c.Rancher.Network.validate(&p)
	c.Rancher.validateServices(&p)
	c.Rancher.validateTrust(&p)
	c.Rancher.Kubernetes.validate(&p)
	if len(p) == 0 {
		return nil
	}
	return &CheckError{Problems: p}
}

// problems gathers what Validate finds, each with its key path.
type problems []string

func (p *problems) bad(key, format string, args ...any) {
	*p = append(*p, key+": "+fmt.Sprintf(format, args...))
}

// validateFiles checks write_files and mounts.
func (c Config) validateFiles(p *problems) {
	for i, f := range c.WriteFiles {
		k := fmt.Sprintf("write_files[%d]", i)
		if !path.IsAbs(f.Path) {
			p.bad(k+".path", "want an absolute path, got %q", f.Path)
		}
		if _, err := Decode(f.Encoding, ""); err != nil {
			p.bad(k+".encoding", "%v", err)
		}
	}
	for i, m := range c.Mounts {
		if len(m) < 2 || len(m) > 4 {
			p.bad(fmt.Sprintf("mounts[%d]", i), "want [device, mount point, type, options], got %d fields", len(m))
		} else if !path.IsAbs(m[1]) {
			p.bad(fmt.Sprintf("mounts[%d][1]", i), "want an absolute mount point, got %q", m[1])
		}
	}
}

// validate checks rancher.network.
func (n Network) validate(p *problems) {
	for name, ic := range n.Interfaces {
		k := "rancher.network.interfaces." + name
		if strings.Contains(name, ".") {
			k = "rancher.network.interfaces[" + name + "]"
		}
		for _, a := range append([]string{ic.Address}, ic.Addresses...) {
			if a == "" {
				continue
			}
			if _, _, err := net.ParseCIDR(a); err != nil {
				p.bad(k+".address", "%q: want an address with its prefix length, such as 10.0.0.5/24", a)
			}
		}
		for key, gw := range map[string]string{"gateway": ic.Gateway, "gateway_ipv6": ic.GatewayIPv6} {
			if gw != "" && net.ParseIP(gw) == nil {
				p.bad(k+"."+key, "%q is not an IP address", gw)
			}
		}
		if ic.MTU != 0 && (ic.MTU < 68 || ic.MTU > 65535) {
			p.bad(k+".mtu", "%d: want 68 to 65535", ic.MTU)
		}
		if _, err := ParseVlans(ic.Vlans); err != nil {
			p.bad(k+".vlans", "%v", err)
		}
	}
	for i, ns := range n.DNS.Nameservers {
		if net.ParseIP(ns) == nil {
			p.bad(fmt.Sprintf("rancher.network.dns.nameservers[%d]", i), "%q is not an IP address", ns)
		}
	}
}

// validateServices checks the keys of the built-in services: ssh, console,
// docker.
func (r Rancher) validateServices(p *problems) {
	if r.SSH.Port < 0 || r.SSH.Port > 65535 {
		p.bad("rancher.ssh.port", "%d: want 1 to 65535", r.SSH.Port)
	}
	switch r.Console {
	case "", "default":
	default:
		p.bad("rancher.console", "%q: only the default console is built into this OS", r.Console)
	}
	switch r.Docker.Engine {
	case "", "default":
	default:
		p.bad("rancher.docker.engine", "%q: only the built-in engine (docker.io) is in this OS", r.Docker.Engine)
	}
	if r.Docker.TLS {
		p.bad("rancher.docker.tls", "TLS on a TCP port is not supported; the engine listens on /var/run/docker.sock")
	}
}

// validateTrust checks the upgrade's public keys and registry credentials.
func (r Rancher) validateTrust(p *problems) {
	for i, k := range r.Upgrade.PublicKeys {
		if err := checkPublicKey(k); err != nil {
			p.bad(fmt.Sprintf("rancher.upgrade.public_keys[%d]", i), "%v", err)
		}
	}
	for reg, a := range r.RegistryAuths {
		k := "rancher.registry_auths[" + reg + "]"
		if RegistryHost(reg) == "" {
			p.bad(k, "%q is not a registry (want a host such as registry.example.com:5000)", reg)
		}
		if _, _, err := a.Credentials(); err != nil {
			p.bad(k, "%v", err)
		}
	}
}

// Vlan is one VLAN of rancher.network.interfaces.NAME.vlans.
type Vlan struct {
	ID   int
	Name string // empty: PARENT.ID
}

// ParseVlans reads "100,200:name".
func ParseVlans(s string) ([]Vlan, error) {
	var out []Vlan
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		idS, name, _ := strings.Cut(f, ":")
		id, err := strconv.Atoi(idS)
		if err != nil || id < 1 || id > 4094 {
			return nil, fmt.Errorf("%q: want a VLAN ID from 1 to 4094, optionally :NAME", f)
		}
		out = append(out, Vlan{ID: id, Name: name})
	}
	return out, nil
}

// checkPublicKey checks one PEM public key of rancher.upgrade.public_keys:
// ECDSA P-256 or Ed25519, one key per entry.
func checkPublicKey(s string) error {
	blk, rest := pem.Decode([]byte(strings.TrimSpace(s)))
	if blk == nil || blk.Type != "PUBLIC KEY" {
		return fmt.Errorf(`not a PEM public key (want "-----BEGIN PUBLIC KEY-----")`)
	}
	if strings.TrimSpace(string(rest)) != "" {
		return fmt.Errorf("more than one PEM block: give one key per list entry")
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return fmt.Errorf("public key: %w", err)
	}
	switch k := k.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return fmt.Errorf("an ECDSA key on %s: only P-256 is supported", k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
	default:
		return fmt.Errorf("a %T key: only ECDSA P-256 and Ed25519 are supported", k)
	}
	return nil
}

// validate checks rancher.kubernetes.
func (k Kubernetes) validate(p *problems) {
	k.validateRole(p)
	k.validateAddresses(p)
	k.validateNode(p)
	k.validateExtraArgs(p)
}

const kubePre = "rancher.kubernetes."

// validateRole checks the role and what it needs: an agent's server and
// token.
func (k Kubernetes) validateRole(p *problems) {
	switch k.Role {
	case "", "server":
		if k.ServerURL != "" {
			p.bad(kubePre+"server_url", "a server does not join another (one server per cluster); set role: agent to join %s", k.ServerURL)
		}
	case "agent":
		if k.ServerURL == "" {
			p.bad(kubePre+"server_url", "an agent needs its server's URL (https://HOST:6443)")
		}
		if k.Token == "" && k.TokenFile == "" {
			p.bad(kubePre+"token", "an agent needs the cluster's token (or token_file): the server's /var/lib/rancher/kubernetes/server/node-token")
		}
	default:
		p.bad(kubePre+"role", "%q: want server or agent", k.Role)
	}
	if k.ServerURL != "" {
		if u, err := url.Parse(k.ServerURL); err != nil || u.Scheme != "https" || u.Host == "" {
			p.bad(kubePre+"server_url", "%q: want https://HOST:PORT", k.ServerURL)
		}
	}
	if k.TokenFile != "" && !path.IsAbs(k.TokenFile) {
		p.bad(kubePre+"token_file", "want an absolute path, got %q", k.TokenFile)
	}
}

// validateAddresses checks the addresses, CIDRs and the named choices.
func (k Kubernetes) validateAddresses(p *problems) {
	for _, a := range []struct{ key, v string }{{"node_ip", k.NodeIP}, {"cluster_dns", k.ClusterDNS}} {
		if a.v != "" && net.ParseIP(a.v) == nil {
			p.bad(kubePre+a.key, "%q is not an IP address", a.v)
		}
	}
	for _, a := range []struct{ key, v string }{{"cluster_cidr", k.ClusterCIDR}, {"service_cidr", k.ServiceCIDR}} {
		if _, _, err := net.ParseCIDR(a.v); a.v != "" && err != nil {
			p.bad(kubePre+a.key, "%q is not a CIDR (such as 10.42.0.0/16)", a.v)
		}
	}
	for _, c := range []struct {
		key, v  string
		allowed []string
	}{
		{"datastore", k.Datastore, []string{"etcd", "sqlite"}},
		{"proxy_mode", k.ProxyMode, []string{"nftables", "iptables"}},
		{"flannel_backend", k.FlannelBackend, []string{"vxlan", "host-gw", "none"}},
	} {
		if c.v != "" && !slices.Contains(c.allowed, c.v) {
			p.bad(kubePre+c.key, "%q: want %s", c.v, strings.Join(c.allowed, " or "))
		}
	}
}

// validateNode checks the node's name, labels and taints.
func (k Kubernetes) validateNode(p *problems) {
	if k.NodeName != "" && (len(k.NodeName) > 253 || !hostnameRE.MatchString(k.NodeName)) {
		p.bad(kubePre+"node_name", "%q is not a valid node name (letters, digits, '-', dots)", k.NodeName)
	}
	for i, l := range k.NodeLabels {
		if key, _, ok := strings.Cut(l, "="); !ok || key == "" {
			p.bad(fmt.Sprintf("%snode_labels[%d]", kubePre, i), "%q: want KEY=VALUE", l)
		}
	}
	for i, t := range k.NodeTaints {
		kv, effect, ok := strings.Cut(t, ":")
		switch {
		case !ok || kv == "" || strings.HasPrefix(kv, "="):
			p.bad(fmt.Sprintf("%snode_taints[%d]", kubePre, i), "%q: want KEY=VALUE:EFFECT", t)
		case effect != "NoSchedule" && effect != "PreferNoSchedule" && effect != "NoExecute":
			p.bad(fmt.Sprintf("%snode_taints[%d]", kubePre, i), "%q: the effect must be NoSchedule, PreferNoSchedule or NoExecute", t)
		}
	}
}

// validateExtraArgs checks extra_args: known components, NAME=VALUE.
func (k Kubernetes) validateExtraArgs(p *problems) {
	for comp, args := range k.ExtraArgs {
		if !slices.Contains(KubernetesComponents, comp) {
			p.bad(kubePre+"extra_args."+comp, "not a component: want one of %s", strings.Join(KubernetesComponents, ", "))
			continue
		}
		for i, a := range args {
			if name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "="); name == "" || strings.ContainsAny(name, " \t") {
				p.bad(fmt.Sprintf("%sextra_args.%s[%d]", kubePre, comp, i), "%q: want NAME=VALUE (a flag of %s)", a, comp)
			}
		}
	}
}
