package pki

import (
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCAIsMadeOnceAndKept(t *testing.T) {
	dir := t.TempDir()
	ca, err := LoadOrCreateCA(dir, "ca", "rosos-ca")
	if err != nil {
		t.Fatal(err)
	}
	if !ca.Cert.IsCA {
		t.Fatal("the CA certificate is not a CA")
	}
	again, err := LoadOrCreateCA(dir, "ca", "rosos-ca")
	if err != nil {
		t.Fatal(err)
	}
	if Hash(again.CertPEM) != Hash(ca.CertPEM) {
		t.Fatal("a second start made a new CA")
	}
	if fi, err := os.Stat(filepath.Join(dir, "ca.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("ca.key: %v, mode %v; want 0600", err, fi.Mode())
	}
}

func TestCAWithoutItsKeyIsAnError(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadOrCreateCA(dir, "ca", "rosos-ca"); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "ca.key")); err != nil {
		t.Fatal(err)
	}
	_, err := LoadOrCreateCA(dir, "ca", "rosos-ca")
	if err == nil || !strings.Contains(err.Error(), "ca.key") {
		t.Fatalf("err = %v; want one naming the missing key", err)
	}
}

func TestEnsureIssuesVerifiesAndRenewsForNewNames(t *testing.T) {
	dir := t.TempDir()
	ca, err := LoadOrCreateCA(dir, "ca", "rosos-ca")
	if err != nil {
		t.Fatal(err)
	}
	spec := Spec{CommonName: "kube-apiserver", DNSNames: []string{"kubernetes"}, IPs: []net.IP{net.ParseIP("10.43.0.1")}, Server: true}
	made, err := ca.Ensure(dir, "apiserver", spec)
	if err != nil || !made {
		t.Fatalf("first Ensure: made=%v err=%v", made, err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "apiserver.crt"))
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ParseCert(b)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: "kubernetes", KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Fatalf("the serving certificate does not verify: %v", err)
	}
	if made, err := ca.Ensure(dir, "apiserver", spec); err != nil || made {
		t.Fatalf("same spec again: made=%v err=%v; want kept", made, err)
	}
	spec.IPs = append(spec.IPs, net.ParseIP("192.168.1.5"))
	if made, err := ca.Ensure(dir, "apiserver", spec); err != nil || !made {
		t.Fatalf("a new address: made=%v err=%v; want a new certificate", made, err)
	}
	// A certificate of another CA is replaced.
	other, err := LoadOrCreateCA(t.TempDir(), "ca", "other")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Ensure(dir, "apiserver", spec); err != nil {
		t.Fatal(err)
	}
	if made, err := ca.Ensure(dir, "apiserver", spec); err != nil || !made {
		t.Fatalf("signed by another CA: made=%v err=%v; want a new certificate", made, err)
	}
}

func TestKubeconfigHasTheCredentials(t *testing.T) {
	dir := t.TempDir()
	ca, err := LoadOrCreateCA(dir, "ca", "rosos-ca")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "admin.kubeconfig")
	if err := ca.EnsureKubeconfig(path, "https://127.0.0.1:6443", dir, "admin", Spec{CommonName: "admin", Organization: []string{"system:masters"}, Client: true}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"server: https://127.0.0.1:6443", "certificate-authority-data: ", "client-key-data: "} {
		if !strings.Contains(string(b), want) {
			t.Errorf("kubeconfig lacks %q:\n%s", want, b)
		}
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("kubeconfig mode %v; want 0600", fi.Mode().Perm())
	}
}

func TestServiceAccountKey(t *testing.T) {
	p := filepath.Join(t.TempDir(), "service-account.key")
	if err := EnsureKey(p); err != nil {
		t.Fatal(err)
	}
	b1, _ := os.ReadFile(p)
	if err := EnsureKey(p); err != nil {
		t.Fatal(err)
	}
	b2, _ := os.ReadFile(p)
	if string(b1) != string(b2) {
		t.Fatal("a second EnsureKey replaced the key")
	}
	if _, err := os.Stat(strings.TrimSuffix(p, ".key") + ".pub"); err != nil {
		t.Fatal(err)
	}
}
