package node

import (
	"bytes"
	"context"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rosos/ros/cmd/kube/pki"
)

// agentCreds are what a node's kubelet and kube-proxy need: the cluster's
// CA, their certificates, and where the API server is.
type agentCreds struct {
	ServerURL   string `json:"server_url"`
	CA          []byte `json:"ca"`
	KubeletCert []byte `json:"kubelet_cert"`
	KubeletKey  []byte `json:"kubelet_key"`
	ServingCert []byte `json:"serving_cert"`
	ServingKey  []byte `json:"serving_key"`
	ProxyCert   []byte `json:"proxy_cert"`
	ProxyKey    []byte `json:"proxy_key"`
	// FlannelCert is flannel's own identity (system:rosos-flannel, bound
	// by the server's flannel-rbac.yaml to reading every node): the Node
	// authorizer lets a kubelet read only its own Node object.
	FlannelCert []byte `json:"flannel_cert"`
	FlannelKey  []byte `json:"flannel_key"`
	ClusterCIDR string `json:"cluster_cidr"`
	ServiceCIDR string `json:"service_cidr"`
	ClusterDNS  string `json:"cluster_dns"`
	// Backend is the server's flannel_backend: every node uses the same.
	Backend string `json:"flannel_backend,omitempty"`
}

// FlannelUser is the user flannel's certificate names.
const FlannelUser = "system:rosos-flannel"

// issueAgent makes the certificates of one node, signed by the cluster CA.
func (s *server) issueAgent(name, ip string) (*agentCreds, error) {
	a := &agentCreds{CA: s.ca.CertPEM, ClusterCIDR: s.c.ClusterCIDR, ServiceCIDR: s.c.ServiceCIDR, ClusterDNS: s.c.ClusterDNS, Backend: s.c.FlannelBackend}
	var err error
	if a.KubeletCert, a.KubeletKey, err = s.ca.Issue(pki.Spec{CommonName: "system:node:" + name, Organization: []string{"system:nodes"}, Client: true}); err != nil {
		return nil, err
	}
	ips := []net.IP{net.ParseIP("127.0.0.1")}
	if p := net.ParseIP(ip); p != nil {
		ips = append(ips, p)
	}
	if a.ServingCert, a.ServingKey, err = s.ca.Issue(pki.Spec{CommonName: name, DNSNames: []string{name, "localhost"}, IPs: ips, Server: true}); err != nil {
		return nil, err
	}
	if a.ProxyCert, a.ProxyKey, err = s.ca.Issue(pki.Spec{CommonName: "system:kube-proxy", Client: true}); err != nil {
		return nil, err
	}
	if a.FlannelCert, a.FlannelKey, err = s.ca.Issue(pki.Spec{CommonName: FlannelUser, Client: true}); err != nil {
		return nil, err
	}
	return a, nil
}

// serveJoin answers agents on the join port (RKE2's supervisor port):
// GET /cacerts gives the CA (an agent checks it against its token's hash),
// POST /v1/node with the token gives a node's certificates.
func (s *server) serveJoin(ctx context.Context, ln net.Listener) error {
	dir := s.p.serverTLS()
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "apiserver.crt"), filepath.Join(dir, "apiserver.key"))
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /cacerts", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write(s.ca.CertPEM)
	})
	mux.HandleFunc("POST /v1/node", func(w http.ResponseWriter, r *http.Request) {
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		if subtle.ConstantTimeCompare([]byte(tok), []byte(s.secret)) != 1 {
			s.log.Warn("join refused: wrong token", "from", r.RemoteAddr)
			http.Error(w, "wrong token", http.StatusUnauthorized)
			return
		}
		name, ip := r.URL.Query().Get("name"), r.URL.Query().Get("ip")
		if name == "" || net.ParseIP(ip) == nil {
			http.Error(w, "want ?name=NODE&ip=ADDRESS", http.StatusBadRequest)
			return
		}
		a, err := s.issueAgent(name, ip)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		s.log.Info("node joined", "node", name, "ip", ip)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(a)
	})
	srv := &http.Server{
		Handler:           mux,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// join gets an agent's certificates from its server, or reads the ones
// it got before (kept in the agent's state, so a restart needs no server).
func join(ctx context.Context, log *slog.Logger, c Config, p paths) (*agentCreds, error) {
	kept := p.agentFile("join.json")
	if b, err := os.ReadFile(kept); err == nil {
		var a agentCreds
		// Credentials kept by an older version, without flannel's, are
		// fetched again.
		if err := json.Unmarshal(b, &a); err == nil && a.ServerURL == c.ServerURL && len(a.FlannelCert) > 0 {
			return &a, nil
		}
	}
	u, err := url.Parse(c.ServerURL)
	if err != nil {
		return nil, err
	}
	joinURL := "https://" + net.JoinHostPort(u.Hostname(), strconv.Itoa(joinPort))
	hash, secret, pinned := parseToken(c.Token)
	var a *agentCreds
	for attempt := 0; ; attempt++ {
		a, err = fetchCreds(ctx, joinURL, c, hash, secret, pinned)
		if err == nil {
			break
		}
		var perm permanent
		if errors.As(err, &perm) {
			return nil, err
		}
		log.Info("waiting for the server", "url", joinURL, "err", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(5 * time.Second):
		}
	}
	a.ServerURL = c.ServerURL
	b, err := json.Marshal(a)
	if err != nil {
		return nil, err
	}
	return a, pki.WriteFile(kept, b, 0o600)
}

// permanent is an error that waiting will not mend.
type permanent struct{ error }

func fetchCreds(ctx context.Context, joinURL string, c Config, hash, secret string, pinned bool) (*agentCreds, error) {
	insecure := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}, //nolint:gosec // the CA is checked against the token's hash next
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, joinURL+"/cacerts", nil)
	if err != nil {
		return nil, err
	}
	resp, err := insecure.Do(req)
	if err != nil {
		return nil, err
	}
	caPEM, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	if err != nil {
		return nil, err
	}
	if pinned && pki.Hash(caPEM) != hash {
		return nil, permanent{fmt.Errorf("the server %s has CA %s, not the one the token names (%s): a wrong server or token", joinURL, pki.Hash(caPEM), hash)}
	}
	ca, err := pki.ParseCert(caPEM)
	if err != nil {
		return nil, fmt.Errorf("the server's CA: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	cl := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	q := url.Values{"name": {c.NodeName}, "ip": {c.NodeIP}}
	req, err = http.NewRequestWithContext(ctx, http.MethodPost, joinURL+"/v1/node?"+q.Encode(), bytes.NewReader(nil))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err = cl.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusUnauthorized {
		return nil, permanent{fmt.Errorf("the server %s refused the token", joinURL)}
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s: %s", joinURL, resp.Status, strings.TrimSpace(string(body)))
	}
	var a agentCreds
	if err := json.Unmarshal(body, &a); err != nil {
		return nil, fmt.Errorf("%s: %w", joinURL, err)
	}
	return &a, nil
}
