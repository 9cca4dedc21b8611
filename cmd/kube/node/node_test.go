package node

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rosos/ros/cmd/kube/pki"
)

func TestFlagsAndDefaults(t *testing.T) {
	c, err := ParseFlags("server", []string{"--node-name=Node1", "--node-ip=192.168.1.5", "--service-cidr=10.96.0.0/12",
		"--node-label=a=b", "--node-label=c=d", "--kubelet-arg=max-pods=50", "--kube-apiserver-arg=--v=2", "--data-dir=" + t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if c.NodeName != "node1" || c.ClusterDNS != "10.96.0.10" || len(c.NodeLabels) != 2 {
		t.Errorf("config: %+v", c)
	}
	if got := c.ExtraArgs["kubelet"]; len(got) != 1 || got[0] != "--max-pods=50" {
		t.Errorf("kubelet args %q", got)
	}
	if got := c.ExtraArgs["kube-apiserver"]; len(got) != 1 || got[0] != "--v=2" {
		t.Errorf("apiserver args %q", got)
	}
}

func TestBadFlagsAreNamed(t *testing.T) {
	for args, want := range map[string]string{
		"agent --node-ip=1.2.3.4":                                          "needs --server",
		"agent --node-ip=1.2.3.4 --server=https://s:6443":                  "token",
		"agent --node-ip=1.2.3.4 --server=http://s:6443 --token=x":         "want https",
		"server --node-ip=1.2.3.4 --server=https://s:6443":                 "one server",
		"server --node-ip=nope":                                            "--node-ip",
		"server --node-ip=1.2.3.4 --cluster-cidr=10.42.0.0":                "--cluster-cidr",
		"server --node-ip=1.2.3.4 --datastore=mysql":                       "--datastore",
		"server --node-ip=1.2.3.4 --proxy-mode=ipvs":                       "--proxy-mode",
		"server --node-ip=1.2.3.4 --flannel-backend=wireguard":             "--flannel-backend",
		"server --node-ip=1.2.3.4 stray":                                   "flags only",
		"agent --node-ip=1.2.3.4 --server=https://s:6443 --token-file=/no": "--token-file",
	} {
		f := strings.Fields(args)
		t.Setenv("KUBE_TOKEN", "")
		_, err := ParseFlags(f[0], f[1:])
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v; want one with %q", args, err, want)
		}
	}
}

func TestTokenFromEnvironment(t *testing.T) {
	t.Setenv("KUBE_TOKEN", "K10abc::server:s3cret")
	c, err := ParseFlags("agent", []string{"--server=https://10.0.0.1:6443", "--node-ip=10.0.0.2"})
	if err != nil {
		t.Fatal(err)
	}
	h, sec, ok := parseToken(c.Token)
	if !ok || h != "abc" || sec != "s3cret" {
		t.Errorf("parseToken(%q) = %q %q %v", c.Token, h, sec, ok)
	}
	if _, sec, ok := parseToken("plain"); ok || sec != "plain" {
		t.Errorf("a plain token: %q %v", sec, ok)
	}
}

func TestNthIP(t *testing.T) {
	for cidr, want := range map[string]string{"10.43.0.0/16": "10.43.0.10", "10.0.0.248/29": "", "192.168.0.0/23": "192.168.0.10"} {
		ip, err := nthIP(cidr, 10)
		if want == "" {
			if err == nil {
				t.Errorf("%s: want an error, got %s", cidr, ip)
			}
			continue
		}
		if err != nil || ip.String() != want {
			t.Errorf("nthIP(%s, 10) = %v, %v; want %s", cidr, ip, err, want)
		}
	}
}

func TestFlannelNetConf(t *testing.T) {
	b, err := netConf("10.42.0.0/16", "vxlan")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"Network": "10.42.0.0/16"`, `"Type": "vxlan"`, `"EnableNFTables": true`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("net-conf lacks %s:\n%s", want, b)
		}
	}
	if _, err := netConf("10.42.0.0/16", "udp"); err == nil || !strings.Contains(err.Error(), `"udp"`) {
		t.Errorf("netConf(udp) = %v, want an error naming it", err)
	}
}

func TestFlannelSubnetFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "subnet.env")
	if _, err := flannelSubnet(f, "10.42.1.0/24"); err == nil {
		t.Error("no subnet file: no error")
	}
	if err := os.WriteFile(f, []byte("FLANNEL_NETWORK=10.42.0.0/16\nFLANNEL_SUBNET=10.42.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if mtu, err := flannelSubnet(f, "10.42.1.0/24"); err != nil || mtu != 1450 {
		t.Errorf("flannelSubnet = %d, %v; want 1450", mtu, err)
	}
	// A file left from another pod CIDR is not this node's network.
	if _, err := flannelSubnet(f, "10.42.2.0/24"); err == nil || !strings.Contains(err.Error(), "10.42.2.0/24") {
		t.Errorf("stale subnet file: %v", err)
	}
	if n := readSubnetFile(f, "FLANNEL_NETWORK"); n.String() != "10.42.0.0/16" {
		t.Errorf("readSubnetFile = %s", n)
	}
}

func TestNthIPCarries(t *testing.T) {
	if ip, err := nthIP("10.0.0.0/16", 300); err != nil || ip.String() != "10.0.1.44" {
		t.Errorf("nthIP(10.0.0.0/16, 300) = %v, %v", ip, err)
	}
}

func TestCNIConfigIsTheNodesCIDR(t *testing.T) {
	b, err := cniConfig("10.42.3.0/24", 1450)
	if err != nil {
		t.Fatal(err)
	}
	var conf struct {
		CNIVersion string `json:"cniVersion"`
		Plugins    []struct {
			Type string `json:"type"`
			IPAM struct {
				Ranges [][]struct{ Subnet string } `json:"ranges"`
			} `json:"ipam"`
		} `json:"plugins"`
	}
	if err := json.Unmarshal(b, &conf); err != nil {
		t.Fatal(err)
	}
	if len(conf.Plugins) != 2 || conf.Plugins[0].Type != "bridge" || conf.Plugins[1].Type != "portmap" || conf.Plugins[0].IPAM.Ranges[0][0].Subnet != "10.42.3.0/24" {
		t.Errorf("CNI config:\n%s", b)
	}
}

func TestKubeletConfigTaints(t *testing.T) {
	c := Config{NodeTaints: []string{"dedicated=gpu:NoSchedule", "spot:PreferNoSchedule"}}
	out := kubeletConfig(c, &agentCreds{ClusterDNS: "10.43.0.10"}, "/tls")
	for _, want := range []string{`clusterDNS: ["10.43.0.10"]`, `- {key: "dedicated", value: "gpu", effect: "NoSchedule"}`, `- {key: "spot", value: "", effect: "PreferNoSchedule"}`, "cgroupDriver: cgroupfs"} {
		if !strings.Contains(out, want) {
			t.Errorf("kubelet config lacks %s:\n%s", want, out)
		}
	}
}

// The join endpoint gives a node certificates only for the right token,
// and an agent refuses a server whose CA is not the one its token names.
func TestJoin(t *testing.T) {
	dir := t.TempDir()
	ca, err := pki.LoadOrCreateCA(filepath.Join(dir, "server", "tls"), "ca", "test-ca")
	if err != nil {
		t.Fatal(err)
	}
	p := paths{dir}
	if _, err := ca.Ensure(p.serverTLS(), "apiserver", pki.Spec{CommonName: "kube-apiserver", IPs: []net.IP{net.ParseIP("127.0.0.1")}, Server: true}); err != nil {
		t.Fatal(err)
	}
	s := &server{c: Config{ClusterCIDR: "10.42.0.0/16", ServiceCIDR: "10.43.0.0/16", ClusterDNS: "10.43.0.10"}, p: p, ca: ca, secret: "s3cret", log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.serveJoin(ctx, ln) }()
	url := "https://" + ln.Addr().String()
	c := Config{NodeName: "agent1", NodeIP: "10.0.0.7"}
	hash := pki.Hash(ca.CertPEM)
	a, err := fetchCreds(ctx, url, c, hash, "s3cret", true)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := pki.ParseCert(a.KubeletCert)
	if err != nil || cert.Subject.CommonName != "system:node:agent1" || cert.CheckSignatureFrom(ca.Cert) != nil {
		t.Errorf("kubelet certificate: %v %v", cert.Subject, err)
	}
	if a.ClusterDNS != "10.43.0.10" {
		t.Errorf("cluster DNS %q", a.ClusterDNS)
	}
	if _, err := fetchCreds(ctx, url, c, hash, "wrong", true); err == nil || !strings.Contains(err.Error(), "refused the token") {
		t.Errorf("a wrong token: %v", err)
	}
	if _, err := fetchCreds(ctx, url, c, strings.Repeat("0", 64), "s3cret", true); err == nil || !strings.Contains(err.Error(), "not the one the token names") {
		t.Errorf("a wrong CA hash: %v", err)
	}
	if _, err := fetchCreds(ctx, url, c, "", "s3cret", false); err != nil {
		t.Errorf("a token without a CA hash: %v", err)
	}
}

// A server keeps the datastore of its first start: switching would start
// an empty cluster over the old one.
func TestDatastoreIsKept(t *testing.T) {
	p := paths{t.TempDir()}
	for _, ds := range []string{"etcd", "sqlite"} {
		if err := checkDatastore(Config{Datastore: ds}, p); err != nil {
			t.Fatalf("first start, %s: %v", ds, err)
		}
	}
	if err := os.MkdirAll(filepath.Join(p.etcdData(), "member"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := checkDatastore(Config{Datastore: "etcd"}, p); err != nil {
		t.Fatalf("etcd over etcd: %v", err)
	}
	err := checkDatastore(Config{Datastore: "sqlite"}, p)
	if err == nil || !strings.Contains(err.Error(), "cluster is in etcd") {
		t.Fatalf("sqlite over etcd: %v", err)
	}
}
