// Package node runs a Kubernetes node the way k3s does: `kube server`
// (datastore, API server, controller manager, scheduler, and the agent's
// parts) or `kube agent` (kubelet, kube-proxy, the CRI containerd), each a
// process of this same binary, with certificates, kubeconfigs and the pod
// network made at start.
package node

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/pflag"
)

// Config is a node's settings: k3s's flags by the same names.
type Config struct {
	Role        string // server or agent
	DataDir     string
	ServerURL   string
	Token       string
	TokenFile   string
	NodeName    string
	NodeIP      string
	NodeLabels  []string
	NodeTaints  []string
	ClusterCIDR string
	ServiceCIDR string
	ClusterDNS  string
	TLSSANs     []string
	Datastore   string // etcd or sqlite
	ProxyMode   string // iptables or nftables
	// FlannelBackend is how pods reach other nodes' pods (servers only;
	// agents take the server's): vxlan, host-gw or none.
	FlannelBackend string
	// Images is the directory of the image archives the node imports at
	// start (pause, CoreDNS); UserImages is where a user puts more.
	Images     string
	UserImages string
	Manifests  string // manifests the server applies (CoreDNS)
	// ExtraArgs are --NAME-arg flags by component: kube-apiserver,
	// kube-controller-manager, kube-scheduler, kubelet, kube-proxy, etcd,
	// kine.
	ExtraArgs map[string][]string
}

// components whose arguments --COMPONENT-arg extends.
var components = []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy", "etcd", "kine"}

// ParseFlags reads the flags of kube server / kube agent. The token may
// come from KUBE_TOKEN too, so that it is not on a command line.
func ParseFlags(role string, args []string) (Config, error) {
	c := Config{Role: role, ExtraArgs: map[string][]string{}}
	fs := pflag.NewFlagSet("kube "+role, pflag.ContinueOnError)
	fs.StringVar(&c.DataDir, "data-dir", "/var/lib/rancher/kubernetes", "state: certificates, datastore, kubelet, containerd")
	fs.StringVar(&c.ServerURL, "server", "", "the server to join (https://HOST:6443); a server without it starts a cluster")
	fs.StringVar(&c.Token, "token", os.Getenv("KUBE_TOKEN"), "the cluster's join token (or KUBE_TOKEN)")
	fs.StringVar(&c.TokenFile, "token-file", "", "a file holding the token")
	fs.StringVar(&c.NodeName, "node-name", "", "the node's name (default: the host name)")
	fs.StringVar(&c.NodeIP, "node-ip", "", "the address the node is reached on (default: that of the default route's interface)")
	fs.StringArrayVar(&c.NodeLabels, "node-label", nil, "KEY=VALUE, a label the node registers with")
	fs.StringArrayVar(&c.NodeTaints, "node-taint", nil, "KEY=VALUE:EFFECT, a taint the node registers with")
	fs.StringVar(&c.ClusterCIDR, "cluster-cidr", "10.42.0.0/16", "pod addresses")
	fs.StringVar(&c.ServiceCIDR, "service-cidr", "10.43.0.0/16", "service addresses")
	fs.StringVar(&c.ClusterDNS, "cluster-dns", "", "CoreDNS's service address (default: the tenth of --service-cidr)")
	fs.StringArrayVar(&c.TLSSANs, "tls-san", nil, "another name or address of the API server's certificate")
	fs.StringVar(&c.Datastore, "datastore", "etcd", "etcd (embedded) or sqlite (kine, one server)")
	fs.StringVar(&c.ProxyMode, "proxy-mode", "nftables", "kube-proxy's mode: nftables or iptables")
	fs.StringVar(&c.FlannelBackend, "flannel-backend", "vxlan", "the pod network between nodes: vxlan, host-gw (nodes on one link) or none (bring your own CNI); a server's, agents take it")
	fs.StringVar(&c.Images, "images", "/usr/share/kubernetes/images", "image archives imported at start")
	fs.StringVar(&c.UserImages, "user-images", "", "more image archives imported at start (default DATA-DIR/agent/images)")
	fs.StringVar(&c.Manifests, "manifests", "/usr/share/kubernetes/manifests", "manifests the server applies")
	extra := map[string]*[]string{}
	for _, comp := range components {
		v := new([]string)
		extra[comp] = v
		fs.StringArrayVar(v, comp+"-arg", nil, "an argument for "+comp+" (NAME=VALUE, without the dashes)")
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("kube %s takes flags only, not %q", role, fs.Args())
	}
	for comp, v := range extra {
		for _, a := range *v {
			a = strings.TrimLeft(a, "-")
			c.ExtraArgs[comp] = append(c.ExtraArgs[comp], "--"+a)
		}
	}
	if c.UserImages == "" {
		c.UserImages = c.DataDir + "/agent/images"
	}
	return c, c.complete()
}

// complete fills in the defaults that depend on the machine and checks
// what the flags say.
func (c *Config) complete() error {
	if c.TokenFile != "" {
		b, err := os.ReadFile(c.TokenFile)
		if err != nil {
			return fmt.Errorf("--token-file: %w", err)
		}
		c.Token = strings.TrimSpace(string(b))
	}
	if c.Role == "agent" {
		if c.ServerURL == "" {
			return errors.New("an agent needs --server, the URL of a server (https://HOST:6443)")
		}
		if c.Token == "" {
			return errors.New("an agent needs the cluster's token (--token, --token-file or KUBE_TOKEN): see /var/lib/rancher/kubernetes/server/node-token on the server")
		}
	}
	if c.ServerURL != "" {
		u, err := url.Parse(c.ServerURL)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return fmt.Errorf("--server %q: want https://HOST:PORT", c.ServerURL)
		}
		if c.Role == "server" {
			return errors.New("--server on a server would join a second server: only one server per cluster is supported; run the other nodes as agents")
		}
	}
	if c.NodeName == "" {
		h, err := os.Hostname()
		if err != nil {
			return err
		}
		c.NodeName = h
	}
	c.NodeName = strings.ToLower(c.NodeName)
	if c.NodeIP == "" {
		ip, err := defaultIP()
		if err != nil {
			return fmt.Errorf("the node's address (set --node-ip): %w", err)
		}
		c.NodeIP = ip.String()
	} else if net.ParseIP(c.NodeIP) == nil {
		return fmt.Errorf("--node-ip %q is not an address", c.NodeIP)
	}
	for _, f := range []struct{ name, v string }{{"--cluster-cidr", c.ClusterCIDR}, {"--service-cidr", c.ServiceCIDR}} {
		if _, _, err := net.ParseCIDR(f.v); err != nil {
			return fmt.Errorf("%s %q is not a CIDR", f.name, f.v)
		}
	}
	if c.ClusterDNS == "" {
		ip, err := nthIP(c.ServiceCIDR, 10)
		if err != nil {
			return err
		}
		c.ClusterDNS = ip.String()
	} else if net.ParseIP(c.ClusterDNS) == nil {
		return fmt.Errorf("--cluster-dns %q is not an address", c.ClusterDNS)
	}
	switch c.Datastore {
	case "etcd", "sqlite":
	default:
		return fmt.Errorf("--datastore %q: want etcd (embedded) or sqlite (kine)", c.Datastore)
	}
	switch c.FlannelBackend {
	case "vxlan", "host-gw", "none":
	default:
		return fmt.Errorf("--flannel-backend %q: want vxlan, host-gw or none", c.FlannelBackend)
	}
	switch c.ProxyMode {
	case "nftables", "iptables":
	default:
		return fmt.Errorf("--proxy-mode %q: want nftables or iptables", c.ProxyMode)
	}
	return nil
}

// nthIP is the n-th address of a CIDR (10.43.0.0/16, 1 is 10.43.0.1).
func nthIP(cidr string, n int) (net.IP, error) {
	_, ipnet, err := net.ParseCIDR(cidr)
	if err != nil {
		return nil, err
	}
	ip := append(net.IP{}, ipnet.IP...)
	if v4 := ip.To4(); v4 != nil {
		ip = v4
	}
	carry := n
	for i := len(ip) - 1; i >= 0 && carry > 0; i-- {
		s := int(ip[i]) + carry
		ip[i] = byte(s)
		carry = s >> 8
	}
	if !ipnet.Contains(ip) {
		return nil, fmt.Errorf("%s has no address number %d", cidr, n)
	}
	return ip, nil
}

// defaultIP is the first address of the interface the default route goes
// out of, read from /proc/net/route.
func defaultIP() (net.IP, error) {
	b, err := os.ReadFile("/proc/net/route")
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 3 || f[1] != "00000000" {
			continue
		}
		ifc, err := net.InterfaceByName(f[0])
		if err != nil {
			return nil, err
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			return nil, err
		}
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
				return ipn.IP, nil
			}
		}
	}
	return nil, errors.New("no default route with an IPv4 address")
}
