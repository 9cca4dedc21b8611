package host

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/crypto/ssh"

	"github.com/rosos/ros/config"
)

// hostKeyTypes are the host keys a node makes for itself, as the
// console's sshd loads them: ssh_host_<type>_key and its .pub.
var hostKeyTypes = []string{"ed25519", "ecdsa"}

// MakeHostKeys makes the SSH host keys missing from dir (an empty file
// counts as missing), in OpenSSH's format, as ssh-keygen would on a
// node's first boot, and returns the files it made. Keys already there,
// rancher.ssh.keys' included, are kept. Made here, before the console
// starts, the first boot's sshd does not wait for ssh-keygen.
func MakeHostKeys(dir, comment string) ([]string, error) {
	var made []string
	for _, t := range hostKeyTypes {
		p := filepath.Join(dir, "ssh_host_"+t+"_key")
		if fi, err := os.Stat(p); err == nil && fi.Size() > 0 {
			continue
		}
		var key crypto.Signer
		var err error
		switch t {
		case "ed25519":
			_, key, err = ed25519.GenerateKey(rand.Reader)
		case "ecdsa":
			key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		}
		if err != nil {
			return made, fmt.Errorf("%s host key: %w", t, err)
		}
		block, err := ssh.MarshalPrivateKey(key, comment)
		if err != nil {
			return made, fmt.Errorf("%s host key: %w", t, err)
		}
		pub, err := ssh.NewPublicKey(key.Public())
		if err != nil {
			return made, fmt.Errorf("%s host key: %w", t, err)
		}
		line := ssh.MarshalAuthorizedKey(pub)
		if comment != "" {
			line = append(line[:len(line)-1], []byte(" "+comment+"\n")...)
		}
		if err := config.WriteAtomic(p+".pub", line, 0o644); err != nil {
			return made, err
		}
		if err := config.WriteAtomic(p, pem.EncodeToMemory(block), 0o600); err != nil {
			return made, err
		}
		made = append(made, p)
	}
	return made, nil
}

// MakeHostKeys makes the host keys the node lacks in dir, after
// rancher.ssh.keys are written (HostKeys), and reports a failure: the
// console's start makes what is still missing with ssh-keygen.
func (h *Host) MakeHostKeys(dir string) {
	hostname, _ := os.Hostname()
	made, err := MakeHostKeys(dir, "root@"+hostname)
	for _, p := range made {
		h.log().Info("made SSH host key", "file", p)
	}
	if err != nil {
		h.problem("SSH host keys: %v", err)
	}
}
