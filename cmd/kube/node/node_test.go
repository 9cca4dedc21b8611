package node

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
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

func TestVTEP(t *testing.T) {
	if m := vtepMAC(net.ParseIP("10.99.0.11")).String(); m != "02:52:0a:63:00:0b" {
		t.Errorf("vtepMAC = %s", m)
	}
	ip, n, err := vtepIP("10.42.1.0/24")
	if err != nil || ip.String() != "10.42.1.0" || n.String() != "10.42.1.0/24" {
		t.Errorf("vtepIP = %v %v %v", ip, n, err)
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
