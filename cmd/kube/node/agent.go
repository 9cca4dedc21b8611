package node

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/rosos/ros/cmd/kube/pki"
)

// PauseImage is the pods' sandbox image, imported from the node's image
// archives (images/kubernetes-pause).
const PauseImage = "docker.io/rosos/pause:3.10"

// startAgent starts the CRI containerd, imports the node's images, and
// starts kubelet, kube-proxy and the pod network.
func startAgent(ctx context.Context, log *slog.Logger, g *group, c Config, p paths, a *agentCreds) error {
	dir := p.agentTLS()
	files := map[string][]byte{
		"ca.crt": a.CA, "kubelet.crt": a.KubeletCert, "kubelet.key": a.KubeletKey,
		"serving.crt": a.ServingCert, "serving.key": a.ServingKey,
	}
	for n, b := range files {
		mode := os.FileMode(0o644)
		if strings.HasSuffix(n, ".key") {
			mode = 0o600
		}
		if err := pki.WriteFile(filepath.Join(dir, n), b, mode); err != nil {
			return err
		}
	}
	if err := pki.WriteFile(p.agentCred("kubelet"), pki.Kubeconfig(a.ServerURL, a.CA, a.KubeletCert, a.KubeletKey), 0o600); err != nil {
		return err
	}
	if err := pki.WriteFile(p.agentCred("kube-proxy"), pki.Kubeconfig(a.ServerURL, a.CA, a.ProxyCert, a.ProxyKey), 0o600); err != nil {
		return err
	}
	if err := pki.WriteFile(p.agentCred("flannel"), pki.Kubeconfig(a.ServerURL, a.CA, a.FlannelCert, a.FlannelKey), 0o600); err != nil {
		return err
	}
	for _, d := range []string{p.cniConf(), containerdState, kubeletRoot, "/var/log/pods", c.UserImages} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if err := pki.WriteFile(p.agentFile("containerd.toml"), []byte(containerdConfig(p)), 0o644); err != nil {
		return err
	}
	if err := g.start("containerd", "containerd", "--config", p.agentFile("containerd.toml")); err != nil {
		return err
	}
	if err := waitFor(ctx, g, "containerd", 5*time.Minute, func() error {
		conn, err := net.Dial("unix", containerdSocket)
		if err != nil {
			return err
		}
		return conn.Close()
	}); err != nil {
		return err
	}
	// The OS image's archives must import; a user's bad one is logged.
	if err := importImages(ctx, log, p, c.Images, true); err != nil {
		return err
	}
	_ = importImages(ctx, log, p, c.UserImages, false)
	if err := pki.WriteFile(p.agentFile("kubelet.yaml"), []byte(kubeletConfig(c, a, dir)), 0o644); err != nil {
		return err
	}
	kubeletArgs := []string{
		"--config=" + p.agentFile("kubelet.yaml"),
		"--kubeconfig=" + p.agentCred("kubelet"),
		"--hostname-override=" + c.NodeName,
		"--node-ip=" + c.NodeIP,
		"--root-dir=" + kubeletRoot,
	}
	if len(c.NodeLabels) > 0 {
		kubeletArgs = append(kubeletArgs, "--node-labels="+strings.Join(c.NodeLabels, ","))
	}
	if err := g.start("kubelet", "", append(kubeletArgs, c.ExtraArgs["kubelet"]...)...); err != nil {
		return err
	}
	if err := pki.WriteFile(p.agentFile("kube-proxy.yaml"), []byte(proxyConfig(c, a, p)), 0o644); err != nil {
		return err
	}
	proxyArgs := []string{"--config=" + p.agentFile("kube-proxy.yaml")}
	if err := g.start("kube-proxy", "", append(proxyArgs, c.ExtraArgs["kube-proxy"]...)...); err != nil {
		return err
	}
	go podNetwork(ctx, log, g, c, p, a)
	// Archives a user drops into the images directory later are imported
	// within seconds, without a restart.
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(10 * time.Second):
			}
			_ = importImages(ctx, log, p, c.UserImages, false)
		}
	}()
	return nil
}

func containerdConfig(p paths) string {
	return fmt.Sprintf(`# Made by kube at each start: the CRI containerd of Kubernetes, apart
# from the OS's system containerd (its own socket, root and state).
version = 3
root = %q
state = %q
[grpc]
  address = %q
[plugins]
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = 'overlayfs'
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = %q
  [plugins.'io.containerd.cri.v1.runtime']
    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = [%q]
      conf_dir = %q
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = 'io.containerd.runc.v2'
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        SystemdCgroup = false
`, p.containerdRoot(), containerdState, containerdSocket, PauseImage, cniBin, p.cniConf())
}

func kubeletConfig(c Config, a *agentCreds, tlsDir string) string {
	var taints strings.Builder
	for _, t := range c.NodeTaints {
		kv, effect, _ := strings.Cut(t, ":")
		k, v, _ := strings.Cut(kv, "=")
		fmt.Fprintf(&taints, "- {key: %q, value: %q, effect: %q}\n", k, v, effect)
	}
	out := fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: %q}
authorization: {mode: Webhook}
tlsCertFile: %q
tlsPrivateKeyFile: %q
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://%s
clusterDomain: cluster.local
clusterDNS: [%q]
failSwapOn: false
serializeImagePulls: false
imageGCHighThresholdPercent: 95
imageGCLowThresholdPercent: 90
evictionHard: {memory.available: "50Mi", nodefs.available: "5%%", imagefs.available: "5%%"}
healthzBindAddress: 127.0.0.1
healthzPort: 10248
`, filepath.Join(tlsDir, "ca.crt"), filepath.Join(tlsDir, "serving.crt"), filepath.Join(tlsDir, "serving.key"), containerdSocket, a.ClusterDNS)
	if taints.Len() > 0 {
		out += "registerWithTaints:\n" + taints.String()
	}
	return out
}

func proxyConfig(c Config, a *agentCreds, p paths) string {
	return fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: %q}
hostnameOverride: %q
clusterCIDR: %q
mode: %q
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
conntrack: {maxPerCore: 0}
`, p.agentCred("kube-proxy"), c.NodeName, a.ClusterCIDR, c.ProxyMode)
}

// importImages imports every image archive (*.tar) of dir into the CRI
// containerd, once per archive: a stamp in the containerd root records
// what was imported, so an archive that changed (a new OS image) is
// imported again, and a wiped containerd gets them all. With must, a
// failure is the node's error; otherwise it is logged and the archive
// tried again when it changes.
func importImages(ctx context.Context, log *slog.Logger, p paths, dir string, must bool) error {
	stamps := filepath.Join(p.containerdRoot(), "rosos-imported")
	if err := os.MkdirAll(stamps, 0o755); err != nil {
		return err
	}
	archives, err := filepath.Glob(filepath.Join(dir, "*.tar"))
	if err != nil {
		return err
	}
	sort.Strings(archives)
	for _, a := range archives {
		fi, err := os.Stat(a)
		if err != nil {
			return err
		}
		id := fmt.Sprintf("%d-%d", fi.Size(), fi.ModTime().UnixNano())
		stamp := filepath.Join(stamps, strings.ReplaceAll(strings.TrimPrefix(a, "/"), "/", "_"))
		if b, err := os.ReadFile(stamp); err == nil && (string(b) == id || string(b) == "failed "+id) {
			continue
		}
		start := time.Now()
		out, err := exec.CommandContext(ctx, "ctr", "--address", containerdSocket, "--namespace", "k8s.io",
			"images", "import", "--local", "--snapshotter", "overlayfs", a).CombinedOutput()
		if err != nil {
			err = fmt.Errorf("import %s: %w: %s", a, err, strings.TrimSpace(string(out)))
			if must {
				return err
			}
			log.Error("image import failed", "archive", a, "err", err)
			_ = os.WriteFile(stamp, []byte("failed "+id), 0o644)
			continue
		}
		log.Info("imported", "archive", a, "seconds", time.Since(start).Round(time.Millisecond).Seconds(), "images", strings.TrimSpace(string(out)))
		if err := os.WriteFile(stamp, []byte(id), 0o644); err != nil {
			return err
		}
	}
	return nil
}
