package node

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/rosos/ros/cmd/kube/pki"
)

// podNetwork gives the node's pods their network once the controller
// manager has given the node its pod CIDR: flannel (vxlan, the default,
// or host-gw) for the way to other nodes' pods and the masquerading of
// what leaves the cluster, then a CNI bridge over the node's CIDR at
// flannel's MTU. The CNI configuration is written last: containerd's CRI
// takes the node as ready for pods once it is there.
func podNetwork(ctx context.Context, log *slog.Logger, g *group, c Config, p paths, a *agentCreds) {
	backend := a.Backend
	if backend == "" {
		backend = "vxlan"
	}
	if backend == "none" {
		log.Info("pod network: none (flannel_backend: none), bring your own CNI")
		return
	}
	fail := func(err error) { g.died <- fmt.Errorf("pod network: %w", err) }
	conf, err := netConf(a.ClusterCIDR, backend)
	if err != nil {
		fail(err)
		return
	}
	if err := pki.WriteFile(p.agentFile("flannel-net-conf.json"), conf, 0o644); err != nil {
		fail(err)
		return
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", p.agentCred("kubelet"))
	if err != nil {
		fail(err)
		return
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		fail(err)
		return
	}
	podCIDR := ""
	for podCIDR == "" {
		n, err := cs.CoreV1().Nodes().Get(ctx, c.NodeName, metav1.GetOptions{})
		switch {
		case err != nil:
			log.Info("pod network: waiting for the node", "err", err)
		case n.Spec.PodCIDR == "":
			log.Info("pod network: waiting for the node's pod CIDR")
		default:
			podCIDR = n.Spec.PodCIDR
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(3 * time.Second):
		}
	}
	if err := g.start("flannel", "", "--kubeconfig="+p.agentCred("flannel"), "--node-name="+c.NodeName,
		"--node-ip="+c.NodeIP, "--net-conf="+p.agentFile("flannel-net-conf.json"), "--subnet-file="+flannelSubnetFile); err != nil {
		fail(err)
		return
	}
	for {
		mtu, err := flannelSubnet(flannelSubnetFile, podCIDR)
		if err == nil {
			if err := writeCNI(p, podCIDR, mtu); err != nil {
				fail(err)
				return
			}
			log.Info("pod network ready", "pod_cidr", podCIDR, "backend", backend, "mtu", mtu)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// cniConfig is the pods' network: a bridge (cni0) with addresses from the
// node's pod CIDR (at the overlay's MTU when mtu is set), and host ports.
// Masquerading is flannel's, not the bridge's, so that traffic between
// pods keeps its addresses.
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
