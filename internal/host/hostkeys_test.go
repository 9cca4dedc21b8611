package host

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

func TestMakeHostKeys(t *testing.T) {
	dir := t.TempDir()
	// A key given by rancher.ssh.keys is kept; an empty file is made anew.
	given := []byte("given\n")
	if err := os.WriteFile(filepath.Join(dir, "ssh_host_ecdsa_key"), given, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ssh_host_ed25519_key"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	made, err := MakeHostKeys(dir, "root@node1")
	if err != nil {
		t.Fatal(err)
	}
	if len(made) != 1 || filepath.Base(made[0]) != "ssh_host_ed25519_key" {
		t.Fatalf("made %v, want only the ed25519 key", made)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "ssh_host_ecdsa_key")); !bytes.Equal(b, given) {
		t.Fatalf("the given ecdsa key was replaced: %q", b)
	}
	os.Remove(filepath.Join(dir, "ssh_host_ecdsa_key"))
	made, err = MakeHostKeys(dir, "root@node1")
	if err != nil {
		t.Fatal(err)
	}
	if len(made) != 1 || filepath.Base(made[0]) != "ssh_host_ecdsa_key" {
		t.Fatalf("made %v, want only the ecdsa key", made)
	}
	for _, c := range []struct{ typ, algo string }{{"ed25519", ssh.KeyAlgoED25519}, {"ecdsa", ssh.KeyAlgoECDSA256}} {
		p := filepath.Join(dir, "ssh_host_"+c.typ+"_key")
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", p, fi.Mode().Perm())
		}
		b, _ := os.ReadFile(p)
		signer, err := ssh.ParsePrivateKey(b)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if signer.PublicKey().Type() != c.algo {
			t.Errorf("%s: type %s, want %s", p, signer.PublicKey().Type(), c.algo)
		}
		pb, _ := os.ReadFile(p + ".pub")
		pub, comment, _, _, err := ssh.ParseAuthorizedKey(pb)
		if err != nil {
			t.Fatalf("%s.pub: %v", p, err)
		}
		if !bytes.Equal(pub.Marshal(), signer.PublicKey().Marshal()) || comment != "root@node1" {
			t.Errorf("%s.pub: %q does not match the private key with comment root@node1", p, pb)
		}
		// OpenSSH's own tool reads the key, where it is on the machine.
		if kg, err := exec.LookPath("ssh-keygen"); err == nil {
			out, err := exec.Command(kg, "-y", "-f", p).CombinedOutput()
			if err != nil {
				t.Fatalf("ssh-keygen -y -f %s: %v: %s", p, err, out)
			}
			if got := strings.Fields(string(out)); len(got) < 2 || got[1] != strings.Fields(string(pb))[1] {
				t.Errorf("ssh-keygen -y: %q, want the key of %q", out, pb)
			}
		}
	}
	// Every key there: nothing is made.
	if made, err := MakeHostKeys(dir, ""); err != nil || len(made) != 0 {
		t.Fatalf("MakeHostKeys again: made %v, %v", made, err)
	}
}
