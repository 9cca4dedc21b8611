//go:build e2e && cluster

package e2e

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// clusterNode is one machine of a multi-node cluster on a hub: eth1 is
// 10.99.0.N/24, the node's address in the cluster.
func clusterNode(t *testing.T, key Key, hub *Hub, n int, kubeKeys string, mem int, disks ...string) (*Machine, *SSH) {
	t.Helper()
	ip := fmt.Sprintf("10.99.0.%d", 10+n)
	cfg := SeedConfig(key, fmt.Sprintf(`hostname: node%d
rancher:
  network:
    interfaces:
      eth1:
        address: %s/24
  services_include:
    kubernetes: true
  kubernetes:
    node_ip: %s
%s`, n, ip, ip, kubeKeys))
	m := New(t, Options{UserData: cfg, MemoryMB: mem, DiskGiB: 10, Hub: hub, HubMAC: fmt.Sprintf("52:54:00:99:00:%02x", n), Disks: disks})
	m.Boot()
	s := m.SSH("rancher", key, 10*time.Minute)
	dumpKubeOnFailure(t, m, key)
	return m, s
}

// TestKubernetesCluster: a server and an agent on one link, the agent
// joined by the server's token from cloud-config. A Deployment spreads
// over both; a pod on the server reaches, through CoreDNS and a Service,
// the pod on the agent; the agent reboots and is upgraded with
// `ros os upgrade` while the cluster keeps serving. make test-cluster.
func TestKubernetesCluster(t *testing.T) {
	key := NewKey(t)
	hub := NewHub(t)
	_, srv := clusterNode(t, key, hub, 0, "    node_name: server\n    token: e2e-cluster-secret\n", 4096)
	defer srv.Close()
	osImage := builtFile(t, "ROS_OS_IMAGE", "make os-image")
	agent, ag := clusterNode(t, key, hub, 1, "    role: agent\n    node_name: agent\n    server_url: https://10.99.0.10:6443\n    token: e2e-cluster-secret\n", 3072, osImage)
	start := time.Now()
	out := srv.Eventually("sudo kubectl get nodes --no-headers 2>&1", kubeReady, nodesReady("server", "agent"))
	t.Logf("both nodes Ready %s after login:\n%s", time.Since(start).Round(time.Second), out)
	for name, s := range map[string]*SSH{"server": srv, "agent": ag} {
		mem := s.MustRun(`awk '/MemTotal/{t=$2} /MemAvailable/{a=$2} END{print (t-a)/1024}' /proc/meminfo`)
		t.Logf("%s: memory in use %s MiB", name, strings.TrimSpace(mem))
	}

	putTestImage(t, srv)
	putTestImage(t, ag)
	// One web pod on each node; the client on the server.
	manifest := strings.Replace(webManifest, "    spec:\n      containers:\n      - name: httpd", `    spec:
      topologySpreadConstraints:
      - {maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: DoNotSchedule, labelSelector: {matchLabels: {app: web}}}
      tolerations: [{operator: Exists}]
      containers:
      - name: httpd`, 1)
	manifest = strings.Replace(manifest, "spec:\n  containers:\n  - name: client", "spec:\n  nodeName: server\n  containers:\n  - name: client", 1)
	if out, err := srv.RunInput("sudo kubectl apply -f - 2>&1", strings.NewReader(manifest)); err != nil {
		t.Fatalf("kubectl apply: %v\n%s", err, out)
	}
	srv.Eventually("sudo kubectl get deploy web -o jsonpath='{.status.readyReplicas}' 2>&1", 15*time.Minute, func(o string) bool { return strings.TrimSpace(o) == "2" })
	srv.Eventually("sudo kubectl get pod client -o jsonpath='{.status.phase}' 2>&1", 5*time.Minute, func(o string) bool { return o == "Running" })
	onAgent := strings.TrimSpace(srv.MustRun("sudo kubectl get pods -l app=web --field-selector spec.nodeName=agent -o jsonpath='{.items[0].metadata.name}'"))
	if onAgent == "" {
		t.Fatalf("no web pod on the agent:\n%s", srv.MustRun("sudo kubectl get pods -o wide"))
	}
	// The client, on the server, reaches the agent's pod through the
	// Service (kube-proxy picks a pod at random: ask until it answers).
	reach := func(want string, within time.Duration) {
		t.Helper()
		srv.Eventually("sudo kubectl exec client -- wget -qO- -T 5 http://web.default.svc.cluster.local/cgi-bin/host 2>&1", within, func(o string) bool {
			return strings.TrimSpace(o) == want
		})
	}
	reach(onAgent, 5*time.Minute)
	t.Logf("a pod on the server reached %s on the agent through CoreDNS and the web Service", onAgent)

	// The agent reboots; the server's web pod keeps the Service answering.
	mark := agent.Mark()
	ag.Run("sudo ros reboot")
	ag.Close()
	for i := 0; i < 5; i++ {
		if o, err := kubectl(srv, "exec client -- wget -qO- -T 5 http://web/cgi-bin/host"); err != nil || !strings.HasPrefix(strings.TrimSpace(o), "web-") {
			t.Errorf("while the agent reboots, the Service did not answer: %v %s", err, o)
		}
		time.Sleep(5 * time.Second)
	}
	agent.WaitConsoleFrom(mark, `ros: boot complete`, 10*time.Minute)
	ag = agent.SSH("rancher", key, 10*time.Minute)
	srv.Eventually("sudo kubectl get nodes --no-headers 2>&1", kubeReady, nodesReady("server", "agent"))
	srv.Eventually("sudo kubectl get deploy web -o jsonpath='{.status.readyReplicas}' 2>&1", 15*time.Minute, func(o string) bool { return strings.TrimSpace(o) == "2" })

	// The agent is upgraded (to this same build, written into slot B with
	// --force: the catalog's image tags follow the running version) and
	// rejoins.
	if out, err := ag.Run("sudo ros os upgrade --no-reboot --force --file /dev/vdc 2>&1"); err != nil {
		t.Fatalf("ros os upgrade: %v\n%s", err, out)
	}
	mark = agent.Mark()
	ag.Run("sudo ros reboot")
	ag.Close()
	if got := bootedSlot(agent, mark); !strings.HasPrefix(got, "B") {
		t.Fatalf("after the upgrade the agent booted %s", got)
	}
	ag = agent.SSH("rancher", key, 10*time.Minute)
	defer ag.Close()
	srv.Eventually("sudo kubectl get nodes --no-headers 2>&1", kubeReady, nodesReady("server", "agent"))
	onAgent = ""
	srv.Eventually("sudo kubectl get pods -l app=web --field-selector spec.nodeName=agent -o jsonpath='{.items[?(@.status.containerStatuses[0].ready==true)].metadata.name}' 2>&1", 15*time.Minute, func(o string) bool {
		onAgent = strings.TrimSpace(o)
		return strings.HasPrefix(onAgent, "web-")
	})
	reach(onAgent, 5*time.Minute)
	if os.Getenv("ROS_KEEP") != "" {
		t.Log(srv.MustRun("sudo kubectl get pods -A -o wide"))
	}
}
