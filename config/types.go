package config

import (
	"fmt"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Config is the merged configuration of a node: RancherOS v1's cloud-config
// keys. The JSON schema (Schema) is generated from these types, and every
// document is checked against them (Check) before it is used.
type Config struct {
	Hostname          string      `yaml:"hostname,omitempty" doc:"the node's host name"`
	SSHAuthorizedKeys []string    `yaml:"ssh_authorized_keys,omitempty" doc:"public keys that may log in as rancher"`
	WriteFiles        []WriteFile `yaml:"write_files,omitempty" doc:"files written at each boot"`
	Runcmd            []Command   `yaml:"runcmd,omitempty" doc:"commands run at the end of each boot (in a container of the console image)"`
	Bootcmd           []Command   `yaml:"bootcmd,omitempty" doc:"commands run early in each boot, before the services start"`
	Mounts            [][]string  `yaml:"mounts,omitempty" doc:"file systems to mount at boot: [device, mount point, type, options]"`
	Rancher           Rancher     `yaml:"rancher,omitempty"`
}

// WriteFile is one entry of write_files.
type WriteFile struct {
	Path        string   `yaml:"path" doc:"absolute path of the file"`
	Content     string   `yaml:"content,omitempty"`
	Encoding    string   `yaml:"encoding,omitempty" doc:"b64, gzip, gz+b64 (or base64, gzip+base64); empty for plain text" enum:",b64,base64,gzip,gz,gz+b64,gzip+b64,gz+base64,gzip+base64"`
	Owner       string   `yaml:"owner,omitempty" doc:"user[:group], by name or number"`
	Permissions FileMode `yaml:"permissions,omitempty" doc:"an octal string such as \"0644\", or a number"`
	Append      bool     `yaml:"append,omitempty"`
	Container   string   `yaml:"container,omitempty" doc:"write into this system service's container instead of the host"`
}

// Rancher is the rancher: section.
type Rancher struct {
	// Services are compose service definitions, kept as YAML maps for the
	// compose parser (package services), which checks them.
	Services map[string]any `yaml:"services,omitempty" doc:"system services, in compose syntax"`
	// ServicesInclude turns optional services (the catalog, a file, a URL)
	// on and off by name, as in RancherOS v1.
	ServicesInclude map[string]bool   `yaml:"services_include,omitempty"`
	Environment     map[string]string `yaml:"environment,omitempty" doc:"variables for ${VAR} in service definitions"`
	Modules         []string          `yaml:"modules,omitempty" doc:"kernel modules loaded at boot"`
	Sysctl          map[string]string `yaml:"sysctl,omitempty" doc:"kernel parameters set at boot and on change"`
	Network         Network           `yaml:"network,omitempty"`
	SSH             SSH               `yaml:"ssh,omitempty"`
	Docker          Docker            `yaml:"docker,omitempty"`
	Kubernetes      Kubernetes        `yaml:"kubernetes,omitempty"`
	Console         string            `yaml:"console,omitempty" doc:"the console service's image flavour; only \"default\" is built"`
	Log             bool              `yaml:"log,omitempty" doc:"verbose logging of the service manager"`
	Debug           bool              `yaml:"debug,omitempty" doc:"debug logging of the service manager"`
	Upgrade         Upgrade           `yaml:"upgrade,omitempty"`
	// RegistryAuths are kept in the root-only config files and never
	// exported (see RegistryAuthsKey).
	RegistryAuths   map[string]RegistryAuth `yaml:"registry_auths,omitempty" doc:"credentials by registry (registry.example.com:5000, or v1's https://index.docker.io/v1/), for service images and ros os upgrade --image; never printed"`
	RestartServices []string                `yaml:"restart_services,omitempty" doc:"services restarted whenever the config changes"`
	CloudInit       CloudInit               `yaml:"cloud_init,omitempty"`
	State           State                   `yaml:"state,omitempty"`
}

// Network is rancher.network: interfaces by name, glob (eth*) or
// mac=xx:xx:..., and DNS.
type Network struct {
	Interfaces map[string]Interface `yaml:"interfaces,omitempty" doc:"by name (eth0, br0, bond0), glob (eth*) or mac=ADDR"`
	DNS        DNS                  `yaml:"dns,omitempty"`
	HTTPProxy  string               `yaml:"http_proxy,omitempty"`
	HTTPSProxy string               `yaml:"https_proxy,omitempty"`
	NoProxy    string               `yaml:"no_proxy,omitempty"`
	PreCmds    []string             `yaml:"pre_cmds,omitempty" doc:"shell commands run before the network is configured"`
	PostCmds   []string             `yaml:"post_cmds,omitempty" doc:"shell commands run after the network is configured"`
}

// Interface is the configuration of one network interface.
type Interface struct {
	DHCP        bool              `yaml:"dhcp,omitempty"`
	Address     string            `yaml:"address,omitempty" doc:"CIDR, such as 10.0.0.5/24"`
	Addresses   []string          `yaml:"addresses,omitempty" doc:"more CIDRs, IPv4 or IPv6"`
	Gateway     string            `yaml:"gateway,omitempty"`
	GatewayIPv6 string            `yaml:"gateway_ipv6,omitempty"`
	MTU         int               `yaml:"mtu,omitempty"`
	Vlans       string            `yaml:"vlans,omitempty" doc:"VLANs on this interface: \"100,200:name\" (ID, or ID:name; default name IFACE.ID)"`
	Bridge      string            `yaml:"bridge,omitempty" doc:"true: this entry is a bridge to create; NAME: add this interface to bridge NAME"`
	Bond        string            `yaml:"bond,omitempty" doc:"add this interface to bond NAME (created from its own entry's bond_opts)"`
	BondOpts    map[string]string `yaml:"bond_opts,omitempty" doc:"this entry is a bond: mode, miimon, lacp_rate, xmit_hash_policy ..."`
}

// DNS is rancher.network.dns.
type DNS struct {
	Nameservers []string `yaml:"nameservers,omitempty"`
	Search      []string `yaml:"search,omitempty"`
}

// SSH is rancher.ssh.
type SSH struct {
	Port          int               `yaml:"port,omitempty" doc:"sshd's port (default 22)"`
	ListenAddress string            `yaml:"listen_address,omitempty"`
	Keys          map[string]string `yaml:"keys,omitempty" private:"true" doc:"host keys by file name (ssh_host_ed25519_key ...), private"`
}

// Docker is rancher.docker: the user's Docker engine.
type Docker struct {
	Engine           string            `yaml:"engine,omitempty" doc:"only the built-in engine is available"`
	Args             []string          `yaml:"args,omitempty" doc:"dockerd's arguments, replacing the built-in ones"`
	ExtraArgs        []string          `yaml:"extra_args,omitempty" doc:"arguments added to dockerd's"`
	Environment      []string          `yaml:"environment,omitempty" doc:"KEY=VALUE for dockerd"`
	StorageDriver    string            `yaml:"storage_driver,omitempty"`
	RegistryMirror   string            `yaml:"registry_mirror,omitempty"`
	InsecureRegistry []string          `yaml:"insecure_registry,omitempty"`
	LogDriver        string            `yaml:"log_driver,omitempty"`
	LogOpts          map[string]string `yaml:"log_opts,omitempty"`
	TLS              bool              `yaml:"tls,omitempty"`
	CACert           string            `yaml:"ca_cert,omitempty"`
	CAKey            string            `yaml:"ca_key,omitempty" private:"true"`
	ServerCert       string            `yaml:"server_cert,omitempty"`
	ServerKey        string            `yaml:"server_key,omitempty" private:"true"`
}

// Kubernetes is rancher.kubernetes: the kubernetes service (`ros service
// enable kubernetes`), in k3s's words. Each key is the kube flag of the
// same name (node_ip is --node-ip).
type Kubernetes struct {
	Role        string   `yaml:"role,omitempty" doc:"server (the control plane and a node; the default) or agent (a node that joins server_url)" enum:",server,agent"`
	ServerURL   string   `yaml:"server_url,omitempty" doc:"an agent's server: https://HOST:6443"`
	Token       string   `yaml:"token,omitempty" private:"true" doc:"the join token; on a server, the one agents must give (default: made at first start, in /var/lib/rancher/kubernetes/server/node-token)"`
	TokenFile   string   `yaml:"token_file,omitempty" doc:"a file on the node holding the token"`
	NodeName    string   `yaml:"node_name,omitempty" doc:"the node's name (default: the host name)"`
	NodeIP      string   `yaml:"node_ip,omitempty" doc:"the node's address (default: that of the default route)"`
	NodeLabels  []string `yaml:"node_labels,omitempty" doc:"KEY=VALUE labels the node registers with"`
	NodeTaints  []string `yaml:"node_taints,omitempty" doc:"KEY=VALUE:EFFECT taints the node registers with"`
	ClusterCIDR string   `yaml:"cluster_cidr,omitempty" doc:"pod addresses (default 10.42.0.0/16); servers only"`
	ServiceCIDR string   `yaml:"service_cidr,omitempty" doc:"service addresses (default 10.43.0.0/16); servers only"`
	ClusterDNS  string   `yaml:"cluster_dns,omitempty" doc:"CoreDNS's address (default the tenth of service_cidr)"`
	TLSSAN      []string `yaml:"tls_san,omitempty" doc:"more names and addresses for the API server's certificate"`
	Datastore   string   `yaml:"datastore,omitempty" doc:"etcd (embedded, the default) or sqlite (kine over SQLite, for one server); fixed at the server's first start" enum:",etcd,sqlite"`
	ProxyMode   string   `yaml:"proxy_mode,omitempty" doc:"kube-proxy's mode: nftables (default) or iptables" enum:",nftables,iptables"`
	// FlannelBackend is k3s's flannel-backend.
	FlannelBackend string `yaml:"flannel_backend,omitempty" doc:"the pod network between nodes: vxlan (default), host-gw (nodes on one link) or none (bring your own CNI); set on the server, agents take it" enum:",vxlan,host-gw,none"`
	// ExtraArgs are more arguments by component, k3s's --COMPONENT-arg.
	ExtraArgs map[string][]string `yaml:"extra_args,omitempty" doc:"NAME=VALUE arguments by component: kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy, etcd, kine"`
}

// KubernetesComponents are the keys of rancher.kubernetes.extra_args.
var KubernetesComponents = []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy", "etcd", "kine"}

// Upgrade is rancher.upgrade.
type Upgrade struct {
	URL    string `yaml:"url,omitempty"`
	Image  string `yaml:"image,omitempty" doc:"the OS image ros os upgrade takes by default"`
	Policy string `yaml:"policy,omitempty"`
	// PublicKeys, when set, make ros os upgrade take only OS images
	// signed by one of them.
	PublicKeys []string `yaml:"public_keys,omitempty" doc:"PEM public keys (ECDSA P-256, as cosign makes, or Ed25519): when set, ros os upgrade takes only OS images signed by one of them"`
}

// RegistryAuth is the credentials for one registry (rancher.registry_auths,
// as in RancherOS v1): auth (base64 of user:password, as in Docker's
// config.json) or username and password.
type RegistryAuth struct {
	Auth     string `yaml:"auth,omitempty" private:"true" doc:"base64 of username:password"`
	Username string `yaml:"username,omitempty"`
	Password string `yaml:"password,omitempty" private:"true"`
}

// CloudInit is rancher.cloud_init.
type CloudInit struct {
	Datasources []string `yaml:"datasources,omitempty" doc:"tried in order: nocloud, configdrive, cmdline, ec2[:URL], openstack[:URL], url:URL, file:PATH"`
}

// State is rancher.state (where the persistent partition is).
type State struct {
	Dev        string   `yaml:"dev,omitempty"`
	FsType     string   `yaml:"fstype,omitempty"`
	Autoformat []string `yaml:"autoformat,omitempty"`
}

// FileMode is a file's permissions: an octal string ("0644") or a number
// (YAML's 0644 is octal too).
type FileMode uint32

// UnmarshalYAML reads a number as it is and a string as octal.
func (m *FileMode) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("want an octal string such as \"0644\" or a number")
	}
	if n.Tag == "!!int" {
		var v int64
		if err := n.Decode(&v); err != nil || v < 0 || v > 0o7777 {
			return fmt.Errorf("permissions %s: want a mode from 0 to 07777", n.Value)
		}
		*m = FileMode(v)
		return nil
	}
	v, err := ParseMode(n.Value)
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// MarshalYAML writes the mode as an octal string.
func (m FileMode) MarshalYAML() (any, error) { return fmt.Sprintf("%04o", uint32(m)), nil }

// ParseMode parses an octal mode string such as "0644" or "755".
func ParseMode(s string) (FileMode, error) {
	v, err := strconv.ParseUint(strings.TrimPrefix(strings.TrimSpace(s), "0o"), 8, 32)
	if err != nil || v > 0o7777 {
		return 0, fmt.Errorf("permissions %q: want an octal mode such as \"0644\"", s)
	}
	return FileMode(v), nil
}

// Command is one entry of runcmd or bootcmd: a string run by the shell, or
// a list run as it is.
type Command struct {
	Shell string   `yaml:"-"`
	Args  []string `yaml:"-"`
}

// UnmarshalYAML takes a string or a list of strings.
func (c *Command) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return nil
		}
		c.Shell = n.Value
		return nil
	case yaml.SequenceNode:
		return n.Decode(&c.Args)
	}
	return fmt.Errorf("want a command: a string or a list of strings")
}

// MarshalYAML writes the form it was read in.
func (c Command) MarshalYAML() (any, error) {
	if c.Args != nil {
		return c.Args, nil
	}
	return c.Shell, nil
}

// Empty reports an entry with nothing to run (YAML's null or "").
func (c Command) Empty() bool { return strings.TrimSpace(c.Shell) == "" && len(c.Args) == 0 }

// Argv is the command to execute: the list, or sh -c STRING.
func (c Command) Argv() []string {
	if len(c.Args) > 0 {
		return c.Args
	}
	return []string{"/bin/sh", "-c", c.Shell}
}
