package node

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// podNetwork gives the node's pods their network once the controller
// manager has given the node its pod CIDR: a CNI bridge over that CIDR,
// masquerading for what leaves the cluster, and a way to each other
// node's pod CIDR: over VXLAN (the default, any nodes that reach each
// other) or, with host-gw, a route through that node (one link).
func podNetwork(ctx context.Context, log *slog.Logger, g *group, c Config, p paths, a *agentCreds) {
	backend := a.Backend
	if backend == "" {
		backend = "vxlan"
	}
	if backend == "none" {
		log.Info("pod network: none (flannel_backend: none), bring your own CNI")
		return
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", p.agentCred("kube-proxy"))
	if err != nil {
		g.died <- fmt.Errorf("pod network: %w", err)
		return
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		g.died <- fmt.Errorf("pod network: %w", err)
		return
	}
	written := ""
	peers := map[string]string{}
	for {
		nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			log.Info("pod network: waiting for the API server", "err", err)
		}
		var items []corev1.Node
		if nodes != nil {
			items = nodes.Items
		}
		for _, n := range items {
			if n.Name != c.NodeName || n.Spec.PodCIDR == "" || n.Spec.PodCIDR == written {
				continue
			}
			if err := ownPodNetwork(backend, c.NodeIP, n.Spec.PodCIDR, a.ClusterCIDR, p); err != nil {
				log.Error("pod network", "err", err)
				continue
			}
			written = n.Spec.PodCIDR
			peers = map[string]string{}
			log.Info("pod network ready", "pod_cidr", written, "backend", backend)
		}
		for _, n := range items {
			ip := internalIP(n)
			if written == "" || n.Name == c.NodeName || n.Spec.PodCIDR == "" || ip == "" || peers[n.Spec.PodCIDR] == ip {
				continue
			}
			if backend == "vxlan" {
				err = vxlanPeer(n.Spec.PodCIDR, ip)
			} else {
				err = routeVia(n.Spec.PodCIDR, ip)
			}
			if err != nil {
				log.Error("pod network: peer", "node", n.Name, "pod_cidr", n.Spec.PodCIDR, "via", ip, "err", err)
				continue
			}
			peers[n.Spec.PodCIDR] = ip
			log.Info("pod network: peer", "node", n.Name, "pod_cidr", n.Spec.PodCIDR, "via", ip, "backend", backend)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Second):
		}
	}
}

// ownPodNetwork sets up this node's side: the VXLAN device, masquerading,
// and the CNI configuration (written last: containerd's CRI takes the node
// as ready for pods once it is there).
func ownPodNetwork(backend, nodeIP, podCIDR, clusterCIDR string, p paths) error {
	mtu := 0
	if backend == "vxlan" {
		var err error
		if mtu, err = ensureVXLAN(nodeIP, podCIDR); err != nil {
			return err
		}
	}
	if err := masquerade(podCIDR, clusterCIDR); err != nil {
		return err
	}
	return writeCNI(p, podCIDR, mtu)
}

func internalIP(n corev1.Node) string {
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			return a.Address
		}
	}
	return ""
}

func routeVia(cidr, gw string) error {
	_, dst, err := net.ParseCIDR(cidr)
	if err != nil {
		return err
	}
	return netlink.RouteReplace(&netlink.Route{Dst: dst, Gw: net.ParseIP(gw)})
}

// cniConfig is the pods' network: a bridge (cni0) with addresses from the
// node's pod CIDR (at the overlay's MTU when mtu is set), and host ports.
// Masquerading is the node's (masquerade), not the bridge's, so that
// traffic between pods keeps its addresses.
func cniConfig(podCIDR string, mtu int) ([]byte, error) {
	bridge := map[string]any{
		"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
		"ipam": map[string]any{
			"type":   "host-local",
			"ranges": [][]map[string]string{{{"subnet": podCIDR}}},
			"routes": []map[string]string{{"dst": "0.0.0.0/0"}},
		},
	}
	if mtu > 0 {
		bridge["mtu"] = mtu
	}
	conf := map[string]any{
		"cniVersion": "1.0.0",
		"name":       "rosos",
		"plugins": []any{
			bridge,
			map[string]any{"type": "portmap", "backend": "nftables", "capabilities": map[string]bool{"portMappings": true}},
		},
	}
	return json.MarshalIndent(conf, "", "  ")
}

func writeCNI(p paths, podCIDR string, mtu int) error {
	b, err := cniConfig(podCIDR, mtu)
	if err != nil {
		return err
	}
	path := filepath.Join(p.cniConf(), "10-rosos.conflist")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// renderManifests copies the server's manifests into its state with the
// cluster's settings filled in (%{CLUSTER_DNS}%, %{CLUSTER_DOMAIN}%).
func renderManifests(c Config, out string) error {
	files, err := filepath.Glob(filepath.Join(c.Manifests, "*.yaml"))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	r := strings.NewReplacer("%{CLUSTER_DNS}%", c.ClusterDNS, "%{CLUSTER_DOMAIN}%", "cluster.local")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(out, filepath.Base(f)), []byte(r.Replace(string(b))), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// applyManifests applies the server's manifests (CoreDNS) with kubectl
// until it succeeds: the API server may still be coming up.
func applyManifests(ctx context.Context, log *slog.Logger, self string, c Config, p paths) {
	dir := filepath.Join(p.dir, "server", "manifests")
	if err := renderManifests(c, dir); err != nil {
		log.Error("manifests", "dir", c.Manifests, "err", err)
		return
	}
	for {
		out, err := exec.CommandContext(ctx, self, "kubectl", "--kubeconfig", AdminKubeconfig, "apply", "--server-side", "--force-conflicts", "-f", dir).CombinedOutput()
		if err == nil {
			log.Info("manifests applied", "dir", dir, "output", strings.TrimSpace(string(out)))
			return
		}
		log.Info("applying manifests", "dir", dir, "err", err, "output", strings.TrimSpace(string(out)))
		select {
		case <-ctx.Done():
			return
		case <-time.After(10 * time.Second):
		}
	}
}
