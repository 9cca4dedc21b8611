package node

import "path/filepath"

// paths are where a node keeps its state, under --data-dir.
type paths struct{ dir string }

func (p paths) serverTLS() string { return filepath.Join(p.dir, "server", "tls") }
func (p paths) serverCred(n string) string {
	return filepath.Join(p.dir, "server", "cred", n+".kubeconfig")
}
func (p paths) etcdData() string          { return filepath.Join(p.dir, "server", "db", "etcd") }
func (p paths) sqliteDB() string          { return filepath.Join(p.dir, "server", "db", "state.db") }
func (p paths) token() string             { return filepath.Join(p.dir, "server", "token") }
func (p paths) nodeToken() string         { return filepath.Join(p.dir, "server", "node-token") }
func (p paths) agentTLS() string          { return filepath.Join(p.dir, "agent", "tls") }
func (p paths) agentCred(n string) string { return filepath.Join(p.dir, "agent", n+".kubeconfig") }
func (p paths) agentFile(n string) string { return filepath.Join(p.dir, "agent", n) }
func (p paths) containerdRoot() string    { return filepath.Join(p.dir, "agent", "containerd") }
func (p paths) cniConf() string           { return filepath.Join(p.dir, "agent", "etc", "cni", "net.d") }

// Fixed places on the node, outside --data-dir.
const (
	containerdState  = "/run/kubernetes/containerd"
	containerdSocket = containerdState + "/containerd.sock"
	cniBin           = "/usr/libexec/cni"
	kineBin          = "/usr/bin/kine"
	kubeletRoot      = "/var/lib/kubelet"
	// flannelSubnetFile is where flannel writes the node's subnet and MTU.
	flannelSubnetFile = "/run/flannel/subnet.env"
	// AdminKubeconfig is written at each start of a server: kubectl on
	// the console uses it.
	AdminKubeconfig = "/etc/rancher/kubernetes/kubeconfig.yaml"
	apiPort         = 6443
	joinPort        = 9345
)
