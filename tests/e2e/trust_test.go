//go:build e2e

package e2e

import (
	"archive/tar"
	"encoding/base64"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rosos/ros/system/osimage"
)

// TestUpgradeTrust: a node with rancher.upgrade.public_keys takes only OS
// images signed by one of its keys, and no image that would write outside
// its slot: each refused image leaves the boot environment and the slots
// as they were and writes nothing. Then a signed image is pulled from a
// registry that wants the credentials of rancher.registry_auths, which are
// never printed, and written to slot B.
func TestUpgradeTrust(t *testing.T) {
	v := Version(t)
	priv, pub, err := osimage.GenerateKey()
	must(t, err)
	otherPriv, _, err := osimage.GenerateKey()
	must(t, err)

	// Archives on disks: an image signed by the trusted key that would
	// write through a symlink onto the running node's /etc; an unsigned
	// one; one signed by another key.
	hostile := TinyOSImage(t, v+"-hostile",
		tar.Header{Name: "etc-link", Typeflag: tar.TypeSymlink, Linkname: "/etc", Mode: 0o777},
		tar.Header{Name: "etc-link/evil-upgrade", Typeflag: tar.TypeReg, Mode: 0o644, Size: 5})
	SignOSImage(t, hostile, priv)
	unsigned := TinyOSImage(t, v+"-unsigned", tar.Header{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755})
	wrongKey := TinyOSImage(t, v+"-wrongkey", tar.Header{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755})
	SignOSImage(t, wrongKey, otherPriv)

	// A registry that wants credentials, holding a signed upgrade and an
	// unsigned image.
	vb := v + "-signed"
	signed := DeriveOSImage(t, OSImage(t), vb, OSRelease(vb))
	SignOSImage(t, signed, priv)
	reg := NewRegistry(t, "rosos", "s3cret-pass")
	reg.Push("rosos/os:"+vb, signed)
	reg.Push("rosos/os:unsigned", unsigned)
	registry := fmt.Sprintf("10.0.2.2:%d", reg.Port)

	keyYAML := "    - |\n      " + strings.ReplaceAll(strings.TrimSpace(string(pub)), "\n", "\n      ") + "\n"
	key := NewKey(t)
	m := New(t, Options{UserData: SeedConfig(key, "rancher:\n  upgrade:\n    public_keys:\n"+keyYAML),
		Disks: []string{hostile, unsigned, wrongKey}})
	m.Boot()
	if got := bootedSlot(m, 0); got != "A, version "+v {
		t.Fatalf("first boot: %s", got)
	}
	s := m.SSH("rancher", key, 5*time.Minute)
	defer s.Close()
	// Slot A marked good first, so that the list compared below is settled.
	before := s.Eventually("sudo ros os list", 5*time.Minute, func(list string) bool {
		return regexpLines(list, `A\s+`+regexp.QuoteMeta(v)+`\s+yes\s+yes\s+-\s+yes\s+3`) != nil
	})

	refused := []struct{ name, cmd, want string }{
		{"hostile archive", "--file /dev/vdc", "goes through the symlink /etc-link -> /etc"},
		{"unsigned archive", "--file /dev/vdd", "the image is not signed"},
		{"archive signed by another key", "--file /dev/vde", "not made by any key of rancher.upgrade.public_keys"},
		{"unsigned image in a registry", "--plain-http --image " + registry + "/rosos/os:unsigned", "pull"}, // no credentials yet
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			out, err := s.Run("sudo ros os upgrade --no-reboot " + c.cmd)
			if err == nil || !contains(out, c.want) {
				t.Fatalf("ros os upgrade %s: err %v, want an error with %q:\n%s", c.cmd, err, c.want, out)
			}
			t.Logf("refused:\n%s", out)
			if after := s.MustRun("sudo ros os list"); after != before {
				t.Errorf("ros os list changed:\n%s\nwas:\n%s", after, before)
			}
			if out, _ := s.Run("sudo ls /run/ros/state; ls /etc/evil-upgrade"); !contains(out, "No such file") || contains(out, "B.new") {
				t.Errorf("something was written: %s", out)
			}
		})
	}

	// Credentials: set, never printed back.
	auth := base64.StdEncoding.EncodeToString([]byte("rosos:s3cret-pass"))
	s.MustRun(fmt.Sprintf("printf 'rancher:\\n  registry_auths:\\n    %s:\\n      auth: %s\\n' | sudo ros config merge", registry, auth))
	for _, cmd := range []string{"sudo ros config export", "sudo ros config export --full --private", "sudo ros config get rancher", "sudo ros config get rancher.registry_auths",
		"sudo cat /run/ros/config.yml"} {
		out, _ := s.Run(cmd)
		if contains(out, auth) || contains(out, "s3cret") {
			t.Errorf("%s printed the credentials:\n%s", cmd, out)
		}
	}
	if out := s.MustRun("sudo stat -c %a:%U /var/lib/rancher/conf/cloud-config.yml"); strings.TrimSpace(out) != "600:root" {
		t.Errorf("cloud-config.yml: %s, want 600:root", out)
	}
	if out, err := s.Run("sudo ros os upgrade --no-reboot --plain-http --image " + registry + "/rosos/os:unsigned"); err == nil || !contains(out, "the image is not signed") {
		t.Errorf("an unsigned image pulled with credentials: err %v\n%s", err, out)
	}
	refusedBefore := reg.Refused.Load()

	start := time.Now()
	out := s.MustRun("sudo ros os upgrade --no-reboot --plain-http --image " + registry + "/rosos/os:" + vb)
	t.Logf("signed upgrade took %s:\n%s", time.Since(start).Round(time.Second), out)
	for _, want := range []string{"signature: good", "layers checked in", "slot B (version " + vb + ") will be tried at the next boot"} {
		if !contains(out, want) {
			t.Errorf("signed upgrade: no %q", want)
		}
	}
	if list := s.MustRun("sudo ros os list"); regexpLines(list, `B\s+`+regexp.QuoteMeta(vb)+`\s+-\s+-\s+yes\s+-\s+3`) == nil {
		t.Errorf("ros os list after the signed upgrade:\n%s", list)
	}
	t.Logf("the registry refused %d requests without credentials, %d after they were set", refusedBefore, reg.Refused.Load()-refusedBefore)
}
