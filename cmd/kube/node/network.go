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
// and a route to each other node's pod CIDR through that node (the
// nodes share a link, as flannel's host-gw has it).
func podNetwork(ctx context.Context, log *slog.Logger, g *group, c Config, p paths) {
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
	routes := map[string]string{}
	for {
		nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			log.Info("pod network: waiting for the API server", "err", err)
		} else {
			for _, n := range nodes.Items {
				if n.Name == c.NodeName {
					if n.Spec.PodCIDR != "" && n.Spec.PodCIDR != written {
						if err := writeCNI(p, n.Spec.PodCIDR); err != nil {
							log.Error("pod network: CNI config", "err", err)
						} else {
							written = n.Spec.PodCIDR
							log.Info("pod network ready", "pod_cidr", written)
						}
					}
					continue
				}
				ip := internalIP(n)
				if n.Spec.PodCIDR == "" || ip == "" || routes[n.Spec.PodCIDR] == ip {
					continue
				}
				if err := routeVia(n.Spec.PodCIDR, ip); err != nil {
					log.Error("pod network: route", "node", n.Name, "pod_cidr", n.Spec.PodCIDR, "via", ip, "err", err)
					continue
				}
				routes[n.Spec.PodCIDR] = ip
				log.Info("pod network: route", "node", n.Name, "pod_cidr", n.Spec.PodCIDR, "via", ip)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Second):
		}
	}
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
// node's pod CIDR, masquerading what leaves the cluster, and host ports.
func cniConfig(podCIDR string) ([]byte, error) {
	conf := map[string]any{
		"cniVersion": "1.0.0",
		"name":       "rosos",
		"plugins": []any{
			map[string]any{
				"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true, "ipMasqBackend": "nftables",
				"hairpinMode": true,
				"ipam": map[string]any{
					"type":   "host-local",
					"ranges": [][]map[string]string{{{"subnet": podCIDR}}},
					"routes": []map[string]string{{"dst": "0.0.0.0/0"}},
				},
			},
			map[string]any{"type": "portmap", "backend": "nftables", "capabilities": map[string]bool{"portMappings": true}},
		},
	}
	return json.MarshalIndent(conf, "", "  ")
}

func writeCNI(p paths, podCIDR string) error {
	b, err := cniConfig(podCIDR)
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
