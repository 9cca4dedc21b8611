package node

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rosos/ros/cmd/kube/pki"
)

// Run runs the node until ctx is done or one of its components keeps
// failing.
func Run(ctx context.Context, log *slog.Logger, c Config) error {
	g, err := newGroup(log)
	if err != nil {
		return err
	}
	defer g.stop(20 * time.Second)
	p := paths{c.DataDir}
	prepareHost(log)
	var creds *agentCreds
	start := time.Now()
	if c.Role == "server" {
		s, err := startServer(ctx, log, g, c, p)
		if err != nil {
			return err
		}
		creds = s.localAgent
		ln, err := net.Listen("tcp", ":"+strconv.Itoa(joinPort))
		if err != nil {
			return fmt.Errorf("join endpoint: %w", err)
		}
		go func() {
			if err := s.serveJoin(ctx, ln); err != nil {
				g.died <- fmt.Errorf("join endpoint: %w", err)
			}
		}()
	} else {
		if creds, err = join(ctx, log, c, p); err != nil {
			return err
		}
	}
	if err := startAgent(ctx, log, g, c, p, creds); err != nil {
		return err
	}
	log.Info("node started", "role", c.Role, "node", c.NodeName, "seconds", time.Since(start).Round(time.Millisecond).Seconds())
	if c.Role == "server" {
		go applyManifests(ctx, log, g.self, c, p)
	}
	return g.wait(ctx)
}

// prepareHost loads the modules and sets the sysctls pods and kube-proxy
// need. A failure is logged, not fatal: a kernel may have them built in.
func prepareHost(log *slog.Logger) {
	for _, m := range []string{"overlay", "br_netfilter", "nf_conntrack", "nf_tables", "vxlan", "veth", "bridge"} {
		if out, err := exec.Command("modprobe", m).CombinedOutput(); err != nil {
			log.Warn("modprobe", "module", m, "err", err, "output", strings.TrimSpace(string(out)))
		}
	}
	for k, v := range map[string]string{
		"net/ipv4/ip_forward":                 "1",
		"net/ipv6/conf/all/forwarding":        "1",
		"net/bridge/bridge-nf-call-iptables":  "1",
		"net/bridge/bridge-nf-call-ip6tables": "1",
		"fs/inotify/max_user_instances":       "1024",
		"fs/inotify/max_user_watches":         "524288",
	} {
		if err := os.WriteFile("/proc/sys/"+k, []byte(v), 0o644); err != nil {
			log.Warn("sysctl", "key", k, "err", err)
		}
	}
}

// server is the control plane's state while it runs.
type server struct {
	c          Config
	p          paths
	ca         *pki.CA
	secret     string
	log        *slog.Logger
	localAgent *agentCreds
}

func startServer(ctx context.Context, log *slog.Logger, g *group, c Config, p paths) (*server, error) {
	tlsDir := p.serverTLS()
	ca, err := pki.LoadOrCreateCA(tlsDir, "ca", "rosos-kubernetes-ca")
	if err != nil {
		return nil, fmt.Errorf("cluster CA: %w", err)
	}
	s := &server{c: c, p: p, ca: ca, log: log}
	if s.secret, err = serverSecret(c, p); err != nil {
		return nil, err
	}
	if err := pki.WriteFile(p.nodeToken(), []byte(fmt.Sprintf("K10%s::server:%s\n", pki.Hash(ca.CertPEM), s.secret)), 0o600); err != nil {
		return nil, err
	}
	apiIP, err := nthIP(c.ServiceCIDR, 1)
	if err != nil {
		return nil, err
	}
	ips := []net.IP{net.ParseIP("127.0.0.1"), apiIP, net.ParseIP(c.NodeIP)}
	dns := []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", c.NodeName}
	for _, san := range c.TLSSANs {
		if ip := net.ParseIP(san); ip != nil {
			ips = append(ips, ip)
		} else {
			dns = append(dns, san)
		}
	}
	certs := []struct {
		name string
		spec pki.Spec
	}{
		{"apiserver", pki.Spec{CommonName: "kube-apiserver", DNSNames: dns, IPs: ips, Server: true}},
		{"apiserver-kubelet-client", pki.Spec{CommonName: "kube-apiserver-kubelet-client", Organization: []string{"system:masters"}, Client: true}},
	}
	for _, ct := range certs {
		if _, err := ca.Ensure(tlsDir, ct.name, ct.spec); err != nil {
			return nil, err
		}
	}
	if err := pki.EnsureKey(filepath.Join(tlsDir, "service-account.key")); err != nil {
		return nil, fmt.Errorf("service account key: %w", err)
	}
	local := "https://127.0.0.1:" + strconv.Itoa(apiPort)
	for _, u := range []struct {
		name string
		spec pki.Spec
	}{
		{"admin", pki.Spec{CommonName: "admin", Organization: []string{"system:masters"}, Client: true}},
		{"controller-manager", pki.Spec{CommonName: "system:kube-controller-manager", Client: true}},
		{"scheduler", pki.Spec{CommonName: "system:kube-scheduler", Client: true}},
	} {
		if err := ca.EnsureKubeconfig(p.serverCred(u.name), local, tlsDir, "client-"+u.name, u.spec); err != nil {
			return nil, fmt.Errorf("kubeconfig %s: %w", u.name, err)
		}
	}
	// The console's kubectl: the admin's kubeconfig, root's alone.
	admin, err := os.ReadFile(p.serverCred("admin"))
	if err != nil {
		return nil, err
	}
	if err := pki.WriteFile(AdminKubeconfig, admin, 0o600); err != nil {
		return nil, fmt.Errorf("admin kubeconfig: %w", err)
	}

	if err := startDatastore(ctx, g, c, p); err != nil {
		return nil, err
	}
	tls := func(n string) string { return filepath.Join(tlsDir, n) }
	apiArgs := []string{
		"--advertise-address=" + c.NodeIP,
		"--bind-address=0.0.0.0",
		"--secure-port=" + strconv.Itoa(apiPort),
		"--etcd-servers=http://127.0.0.1:2379",
		"--client-ca-file=" + tls("ca.crt"),
		"--tls-cert-file=" + tls("apiserver.crt"),
		"--tls-private-key-file=" + tls("apiserver.key"),
		"--kubelet-client-certificate=" + tls("apiserver-kubelet-client.crt"),
		"--kubelet-client-key=" + tls("apiserver-kubelet-client.key"),
		"--kubelet-certificate-authority=" + tls("ca.crt"),
		"--kubelet-preferred-address-types=InternalIP,Hostname,ExternalIP",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + tls("service-account.pub"),
		"--service-account-signing-key-file=" + tls("service-account.key"),
		"--service-cluster-ip-range=" + c.ServiceCIDR,
		"--authorization-mode=Node,RBAC",
		"--enable-admission-plugins=NodeRestriction",
		"--allow-privileged=true",
		"--anonymous-auth=false",
		"--profiling=false",
		"--enable-bootstrap-token-auth=false",
	}
	if err := g.start("kube-apiserver", "", append(apiArgs, c.ExtraArgs["kube-apiserver"]...)...); err != nil {
		return nil, err
	}
	if err := waitFor(ctx, g, "the API server", 10*time.Minute, s.apiReady); err != nil {
		return nil, err
	}
	// One server holds the control plane (its etcd listens on loopback),
	// so there is no leader to elect. With election on, a lease renewal
	// that misses its deadline under load makes the component exit.
	kc := func(n string) []string {
		k := p.serverCred(n)
		return []string{"--kubeconfig=" + k, "--authentication-kubeconfig=" + k, "--authorization-kubeconfig=" + k, "--bind-address=127.0.0.1", "--leader-elect=false"}
	}
	cmArgs := append(kc("controller-manager"),
		"--allocate-node-cidrs=true",
		"--cluster-cidr="+c.ClusterCIDR,
		"--service-cluster-ip-range="+c.ServiceCIDR,
		"--cluster-signing-cert-file="+tls("ca.crt"),
		"--cluster-signing-key-file="+tls("ca.key"),
		"--root-ca-file="+tls("ca.crt"),
		"--service-account-private-key-file="+tls("service-account.key"),
		"--use-service-account-credentials=true",
		"--configure-cloud-routes=false",
		"--profiling=false",
	)
	if err := g.start("kube-controller-manager", "", append(cmArgs, c.ExtraArgs["kube-controller-manager"]...)...); err != nil {
		return nil, err
	}
	schedArgs := append(kc("scheduler"), "--profiling=false")
	if err := g.start("kube-scheduler", "", append(schedArgs, c.ExtraArgs["kube-scheduler"]...)...); err != nil {
		return nil, err
	}
	s.localAgent, err = s.issueAgent(c.NodeName, c.NodeIP)
	if err != nil {
		return nil, err
	}
	s.localAgent.ServerURL = local
	return s, nil
}

// serverSecret is the secret part of the join token: --token when given,
// else the one kept from the first start, else a new one.
func serverSecret(c Config, p paths) (string, error) {
	if c.Token != "" {
		sec := c.Token
		if _, s, ok := parseToken(c.Token); ok {
			sec = s
		}
		return sec, pki.WriteFile(p.token(), []byte(sec+"\n"), 0o600)
	}
	if b, err := os.ReadFile(p.token()); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	buf := make([]byte, 16)
	if _, err := rand.Read(buf); err != nil {
		return "", err
	}
	sec := hex.EncodeToString(buf)
	return sec, pki.WriteFile(p.token(), []byte(sec+"\n"), 0o600)
}

// parseToken splits a full token, K10<CA hash>::server:<secret>.
func parseToken(t string) (caHash, secret string, ok bool) {
	if !strings.HasPrefix(t, "K10") {
		return "", t, false
	}
	h, rest, found := strings.Cut(t[3:], "::")
	if !found {
		return "", t, false
	}
	_, sec, found := strings.Cut(rest, ":")
	if !found {
		return "", t, false
	}
	return h, sec, true
}

// startDatastore starts the datastore the API server uses on
// 127.0.0.1:2379: embedded etcd, or kine over SQLite (datastore: sqlite,
// as k3s's default for one server).
func startDatastore(ctx context.Context, g *group, c Config, p paths) error {
	if err := checkDatastore(c, p); err != nil {
		return err
	}
	if c.Datastore == "sqlite" {
		return startKine(ctx, g, c, p)
	}
	if err := os.MkdirAll(p.etcdData(), 0o700); err != nil {
		return err
	}
	args := []string{
		"--name=" + c.NodeName,
		"--data-dir=" + p.etcdData(),
		"--listen-client-urls=http://127.0.0.1:2379",
		"--advertise-client-urls=http://127.0.0.1:2379",
		"--listen-peer-urls=http://127.0.0.1:2380",
		"--initial-advertise-peer-urls=http://127.0.0.1:2380",
		"--initial-cluster=" + c.NodeName + "=http://127.0.0.1:2380",
		"--listen-metrics-urls=http://127.0.0.1:2381",
		"--quota-backend-bytes=2147483648",
		"--log-level=warn",
	}
	if err := g.start("etcd", "", append(args, c.ExtraArgs["etcd"]...)...); err != nil {
		return err
	}
	return waitFor(ctx, g, "etcd", 5*time.Minute, func() error {
		return httpOK(http.DefaultClient, "http://127.0.0.1:2379/health")
	})
}

// checkDatastore refuses a datastore other than the one the cluster is
// in: switching would start an empty cluster over the old one's state.
func checkDatastore(c Config, p paths) error {
	other, where := p.sqliteDB(), "sqlite"
	if c.Datastore == "sqlite" {
		other, where = filepath.Join(p.etcdData(), "member"), "etcd"
	}
	if _, err := os.Stat(other); err == nil {
		return fmt.Errorf("--datastore %s: this server's cluster is in %s (%s); a datastore is chosen at the first start and kept, so set datastore back to %s", c.Datastore, where, other, where)
	}
	return nil
}

// startKine runs kine (its own binary, beside kube) with the SQLite
// database under the server's state.
func startKine(ctx context.Context, g *group, c Config, p paths) error {
	if err := os.MkdirAll(filepath.Dir(p.sqliteDB()), 0o700); err != nil {
		return err
	}
	args := []string{
		"--endpoint=sqlite://" + p.sqliteDB() + "?_journal_mode=WAL&_busy_timeout=30000&_synchronous=NORMAL&_txlock=immediate",
		"--listen-address=127.0.0.1:2379",
		"--metrics-bind-address=0",
	}
	if err := g.start("kine", kineBin, append(args, c.ExtraArgs["kine"]...)...); err != nil {
		return err
	}
	return waitFor(ctx, g, "kine", 5*time.Minute, func() error {
		conn, err := net.DialTimeout("tcp", "127.0.0.1:2379", 2*time.Second)
		if err != nil {
			return err
		}
		return conn.Close()
	})
}

// apiReady asks the API server's /readyz as the admin.
func (s *server) apiReady() error {
	cl, err := s.adminClient()
	if err != nil {
		return err
	}
	return httpOK(cl, "https://127.0.0.1:"+strconv.Itoa(apiPort)+"/readyz")
}

func (s *server) adminClient() (*http.Client, error) {
	dir := s.p.serverTLS()
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "client-admin.crt"), filepath.Join(dir, "client-admin.key"))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(s.ca.Cert)
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12,
	}}}, nil
}

func httpOK(cl *http.Client, url string) error {
	resp, err := cl.Get(url)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return nil
}

// waitFor polls check until it succeeds, the node fails, ctx ends or
// the time is up.
func waitFor(ctx context.Context, g *group, what string, limit time.Duration, check func() error) error {
	deadline := time.Now().Add(limit)
	var last error
	for {
		if last = check(); last == nil {
			g.log.Info("ready", "what", what)
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s: %w", what, limit, last)
		}
		select {
		case err := <-g.died:
			return fmt.Errorf("waiting for %s: %w", what, err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}
