//go:build e2e

package e2e

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"
)

// kubeReady is how long a node in QEMU without KVM may take from boot to
// Ready: the control plane's first start makes certificates and etcd.
const kubeReady = 25 * time.Minute

// kubeNode boots a machine whose cloud-config turns the kubernetes
// service on with the given rancher.kubernetes keys (YAML, indented four
// spaces), and logs in.
func kubeNode(t *testing.T, key Key, kubeKeys string, opts Options) (*Machine, *SSH) {
	t.Helper()
	opts.UserData = SeedConfig(key, "rancher:\n  services_include:\n    kubernetes: true\n  kubernetes:\n"+kubeKeys)
	if opts.MemoryMB == 0 {
		opts.MemoryMB = 4096
	}
	if opts.DiskGiB == 0 {
		opts.DiskGiB = 10
	}
	m := New(t, opts)
	m.Boot()
	s := m.SSH("rancher", key, 10*time.Minute)
	dumpKubeOnFailure(t, m, key)
	return m, s
}

// dumpKubeOnFailure logs the end of the kubernetes service's log and the
// cluster's pods when the test fails.
func dumpKubeOnFailure(t *testing.T, m *Machine, key Key) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		s := m.SSH("rancher", key, time.Minute)
		defer s.Close()
		out, _ := s.Run("sudo ros service logs kubernetes 2>&1 | tail -n 150; sudo kubectl get pods -A -o wide 2>&1; sudo ros service list 2>&1")
		t.Logf("kubernetes on the node:\n%s", out)
	})
}

// putTestImage copies the test workload's image archive (make builds it:
// ROS_KUBE_TEST_IMAGE) into the node's image directory, from which the
// node imports it within seconds: no registry.
func putTestImage(t *testing.T, s *SSH) {
	t.Helper()
	p := builtFile(t, "ROS_KUBE_TEST_IMAGE", "make out/kube/test-images/httpd.tar")
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if out, err := s.RunInput("sudo mkdir -p /var/lib/rancher/kubernetes/agent/images && sudo tee /var/lib/rancher/kubernetes/agent/images/httpd-test.tar >/dev/null", f); err != nil {
		t.Fatalf("copy the test image: %v\n%s", err, out)
	}
}

// kubectl runs kubectl on the node's console as root.
func kubectl(s *SSH, args string) (string, error) { return s.Run("sudo kubectl " + args + " 2>&1") }

func nodesReady(want ...string) func(string) bool {
	return func(out string) bool {
		for _, n := range want {
			ok := false
			for _, l := range strings.Split(out, "\n") {
				f := strings.Fields(l)
				if len(f) >= 2 && f[0] == n && f[1] == "Ready" {
					ok = true
				}
			}
			if !ok {
				return false
			}
		}
		return true
	}
}

const webManifest = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: httpd
        image: docker.io/rosos/httpd-test:1
        imagePullPolicy: Never
        ports: [{containerPort: 8080}]
        readinessProbe: {httpGet: {path: /, port: 8080}, periodSeconds: 2}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  containers:
  - name: client
    image: docker.io/rosos/httpd-test:1
    imagePullPolicy: Never
    command: [sleep, "100000"]
`

// TestKubernetesSingleNode enables the kubernetes service from
// cloud-config on one node: the node gets Ready with no registry, a
// Deployment's pods answer through a Service found by CoreDNS, wiping the
// user's Docker leaves Kubernetes alone, and the node comes back after a
// reboot with its workload. Its datastore is kine over SQLite (k3s's
// choice for one server); the cluster test's server uses embedded etcd.
func TestKubernetesSingleNode(t *testing.T) {
	key := NewKey(t)
	m, s := kubeNode(t, key, "    node_name: node1\n    node_labels: [rosos.test/role=server]\n    datastore: sqlite\n", Options{})
	defer s.Close()
	// The built-in services and the catalog's kubernetes (the seed turns
	// it on, and its rancher.kubernetes keys go to its command line after
	// the parse) came from the parses the image carries: the boot ran no
	// compose-go.
	if out := s.MustRun("sudo grep 'msg=\"service definitions\"' /var/log/system/service-manager.log"); !strings.Contains(out, "services=8 compose_parses=0") {
		t.Errorf("the service definitions at boot: %q, want 8 services and compose_parses=0", out)
	}
	start := time.Now()
	out := s.Eventually("sudo kubectl get nodes --no-headers 2>&1", kubeReady, nodesReady("node1"))
	t.Logf("node Ready %s after login:\n%s", time.Since(start).Round(time.Second), out)
	t.Logf("memory in use: %s MiB", strings.TrimSpace(s.MustRun(`awk '/MemTotal/{t=$2} /MemAvailable/{a=$2} END{print (t-a)/1024}' /proc/meminfo`)))
	// Forwarding was on before the user's Docker started, so Docker left
	// the FORWARD chain's policy alone: a DROP there would drop the pods'
	// traffic on their bridge.
	if out := s.MustRun("sudo system-docker exec docker iptables -S FORWARD 2>&1 | head -1"); strings.TrimSpace(out) != "-P FORWARD ACCEPT" {
		t.Errorf("Docker's FORWARD policy: %q, want -P FORWARD ACCEPT", strings.TrimSpace(out))
	}
	// The cluster is in kine's SQLite database; no etcd ran.
	if out, err := s.Run("sudo test -s /var/lib/rancher/kubernetes/server/db/state.db && ! sudo test -e /var/lib/rancher/kubernetes/server/db/etcd && sudo ros service logs kubernetes 2>&1 | grep -c 'what=kine'"); err != nil {
		t.Errorf("datastore sqlite: no kine database, or etcd ran: %v\n%s", err, out)
	}
	if v := s.MustRun("sudo kubectl get node node1 -o jsonpath='{.status.nodeInfo.kubeletVersion} {.metadata.labels.rosos\\.test/role}'"); !strings.Contains(v, "v1.") || !strings.Contains(v, "server") {
		t.Errorf("node1's kubelet version and label: %q", v)
	}
	// CoreDNS comes from the node's own image archives.
	s.Eventually("sudo kubectl -n kube-system get deploy coredns -o jsonpath='{.status.readyReplicas}' 2>&1", 10*time.Minute, func(o string) bool { return strings.TrimSpace(o) == "1" })

	putTestImage(t, s)
	if out, err := s.RunInput("sudo kubectl apply -f - 2>&1", strings.NewReader(webManifest)); err != nil {
		t.Fatalf("kubectl apply: %v\n%s", err, out)
	}
	s.Eventually("sudo kubectl get deploy web -o jsonpath='{.status.readyReplicas}' 2>&1", 10*time.Minute, func(o string) bool { return strings.TrimSpace(o) == "2" })
	s.Eventually("sudo kubectl get pod client -o jsonpath='{.status.phase}' 2>&1", 5*time.Minute, func(o string) bool { return o == "Running" })
	pods := s.MustRun("sudo kubectl get pods -l app=web -o jsonpath='{.items[*].metadata.name}'")
	// Through CoreDNS (the service's name) and kube-proxy (its address).
	got := s.Eventually("sudo kubectl exec client -- wget -qO- -T 5 http://web.default.svc.cluster.local/cgi-bin/host 2>&1", 3*time.Minute, func(o string) bool {
		return strings.TrimSpace(o) != "" && strings.Contains(pods, strings.TrimSpace(o))
	})
	t.Logf("web answered from pod %s", strings.TrimSpace(got))

	// The user's Docker cannot touch Kubernetes.
	if out, err := s.RunInput("docker load", bytes.NewReader(helloImage(t))); err != nil {
		t.Fatalf("docker load: %v\n%s", err, out)
	}
	s.MustRun("docker run -d --name mine e2e/hello:1 /hello sleep")
	s.MustRun("docker rm -f $(docker ps -qa)")
	if out := s.MustRun("docker ps -qa"); strings.TrimSpace(out) != "" {
		t.Fatalf("docker ps -qa after rm: %q", out)
	}
	if out, err := kubectl(s, "get pods -A --no-headers"); err != nil || strings.Count(out, "Running") < 4 {
		t.Fatalf("after docker rm -f, the cluster's pods:\n%s", out)
	}

	// A reboot: the node, its certificates, etcd and the workload come back.
	mark := m.Mark()
	s.Run("sudo ros reboot")
	s.Close()
	m.WaitConsoleFrom(mark, `ros: boot complete`, bootTimeout)
	s = m.SSH("rancher", key, 10*time.Minute)
	s.Eventually("sudo kubectl get nodes --no-headers 2>&1", kubeReady, nodesReady("node1"))
	if out := s.MustRun("sudo system-docker exec docker iptables -S FORWARD 2>&1 | head -1"); strings.TrimSpace(out) != "-P FORWARD ACCEPT" {
		t.Errorf("after the reboot, Docker's FORWARD policy: %q, want -P FORWARD ACCEPT", strings.TrimSpace(out))
	}
	s.Eventually("sudo kubectl exec client -- wget -qO- -T 5 http://web/cgi-bin/host 2>&1", 10*time.Minute, func(o string) bool {
		return strings.HasPrefix(strings.TrimSpace(o), "web-")
	})
	if out := s.MustRun("sudo ros boot analyze"); !strings.Contains(out, "kubernetes") {
		t.Errorf("ros boot analyze does not show the kubernetes service:\n%s", out)
	}
}
