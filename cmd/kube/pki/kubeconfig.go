package pki

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
)

// Kubeconfig is a kubeconfig for one user of one cluster: the server's
// URL, the CA that signed its certificate, and a client certificate.
func Kubeconfig(server string, caPEM, certPEM, keyPEM []byte) []byte {
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Appendf(nil, `apiVersion: v1
kind: Config
clusters:
- name: default
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: default
  user:
    client-certificate-data: %s
    client-key-data: %s
contexts:
- name: default
  context: {cluster: default, user: default}
current-context: default
`, server, b64(caPEM), b64(certPEM), b64(keyPEM))
}

// EnsureKubeconfig writes a kubeconfig at path for the certificate
// DIR/NAME.crt that Ensure keeps, readable by root alone.
func (ca *CA) EnsureKubeconfig(path, server, dir, name string, s Spec) error {
	if _, err := ca.Ensure(dir, name, s); err != nil {
		return err
	}
	certPEM, err := os.ReadFile(filepath.Join(dir, name+".crt"))
	if err != nil {
		return err
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, name+".key"))
	if err != nil {
		return err
	}
	return WriteFile(path, Kubeconfig(server, ca.CertPEM, certPEM, keyPEM), 0o600)
}
