//go:build e2e

package e2e

import (
	"archive/tar"
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rosos/ros/system/osimage"
)

// bootedSlot waits for the boot-complete line after mark and returns
// "SLOT VERSION".
func bootedSlot(m *Machine, mark int) string {
	m.t.Helper()
	return m.WaitConsoleFrom(mark, `boot complete in [0-9.]+s \(slot (\w+, version \S+), `, 10*time.Minute)
}

// TestUpgradeAndRollback: A to B from an archive of another version (the
// running image with a layer on top, as a Dockerfile FROM it makes), given
// as a disk (`--file`); then B to A with `--image`, pulling the original
// version from a registry this test serves (the guest reaches it at
// 10.0.2.2) through system containerd; then a rollback. The data of /home,
// /opt, /var/lib/rancher, the user Docker's containers and the SSH host
// keys survive each.
//
// The node trusts one signing key (rancher.upgrade.public_keys) and both
// upgrades are signed by it. Before them, images that must be refused are
// (one that would write through a symlink onto the node's /etc, an
// unsigned one, one signed by another key; from disks and the registry),
// and each leaves the slots and the boot environment as they were. The
// registry wants credentials: rancher.registry_auths gives them, and they
// are never printed.
func TestUpgradeAndRollback(t *testing.T) {
	v := Version(t)
	vb := v + "-b"
	priv, pub, err := osimage.GenerateKey()
	must(t, err)
	otherPriv, _, err := osimage.GenerateKey()
	must(t, err)
	orig := copyFile(t, OSImage(t))
	SignOSImage(t, orig, priv)
	derived := DeriveOSImage(t, orig, vb, OSRelease(vb))
	SignOSImage(t, derived, priv)
	hostile := TinyOSImage(t, v+"-hostile",
		tar.Header{Name: "etc-link", Typeflag: tar.TypeSymlink, Linkname: "/etc", Mode: 0o777},
		tar.Header{Name: "etc-link/evil-upgrade", Typeflag: tar.TypeReg, Mode: 0o644, Size: 5})
	SignOSImage(t, hostile, priv)
	unsigned := TinyOSImage(t, v+"-unsigned", tar.Header{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755})
	wrongKey := TinyOSImage(t, v+"-wrongkey", tar.Header{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755})
	SignOSImage(t, wrongKey, otherPriv)
	reg := NewRegistry(t, "rosos", "s3cret-pass")
	reg.Push("rosos/os:"+v, orig)
	reg.Push("rosos/os:unsigned", unsigned)
	registry := fmt.Sprintf("10.0.2.2:%d", reg.Port)

	keyYAML := "    - |\n      " + strings.ReplaceAll(strings.TrimSpace(string(pub)), "\n", "\n      ") + "\n"
	key := NewKey(t)
	m := New(t, Options{UserData: SeedConfig(key, "rancher:\n  upgrade:\n    public_keys:\n"+keyYAML),
		Disks: []string{derived, hostile, unsigned, wrongKey}})
	m.Boot()
	if got := bootedSlot(m, 0); got != "A, version "+v {
		t.Fatalf("first boot: %s", got)
	}
	s := m.SSH("rancher", key, 5*time.Minute)
	s.MustRun("echo home > /home/rancher/keep && sudo sh -c 'echo opt > /opt/keep && echo lib > /var/lib/rancher/keep'")
	// Wait for the engine itself: docker info prints "Server Version" only once the daemon answers.
	s.Eventually("docker info", 3*time.Minute, func(out string) bool { return strings.Contains(out, "Server Version") })
	if out, err := s.RunInput("docker load", bytes.NewReader(helloImage(t))); err != nil {
		t.Fatalf("docker load: %v\n%s", err, out)
	}
	s.MustRun("docker create --name keep e2e/hello:1")
	hostKey := s.MustRun("cat /var/lib/rancher/ssh/ssh_host_ed25519_key.pub")

	check := func(t *testing.T, s *SSH, want string) {
		t.Helper()
		if out := strings.TrimSpace(s.MustRun("sudo ros os version")); out != want {
			t.Errorf("ros os version: %q, want %q", out, want)
		}
		out := s.MustRun("cat /home/rancher/keep /opt/keep /var/lib/rancher/keep; cat /var/lib/rancher/ssh/ssh_host_ed25519_key.pub")
		if !contains(out, "home\nopt\nlib\n") || !contains(out, strings.TrimSpace(hostKey)) {
			t.Errorf("data after the switch: %q", out)
		}
		s.Eventually("docker ps -a --format '{{.Names}}'", 3*time.Minute, func(out string) bool { return contains(out, "keep") })
	}

	// Refused images write nothing. Slot A is marked good first, so that
	// the list compared is settled.
	before := s.Eventually("sudo ros os list", 5*time.Minute, func(list string) bool {
		return regexpLines(list, `A\s+`+regexp.QuoteMeta(v)+`\s+yes\s+yes\s+-\s+yes\s+3`) != nil
	})
	for _, c := range []struct{ name, args, want string }{
		{"hostile archive", "--file /dev/vdd", "goes through the symlink /etc-link -> /etc"},
		{"unsigned archive", "--file /dev/vde", "the image is not signed"},
		{"archive signed by another key", "--file /dev/vdf", "not made by any key of rancher.upgrade.public_keys"},
		{"image from a registry without its credentials", "--plain-http --image " + registry + "/rosos/os:" + v, "no basic auth credentials"},
	} {
		t.Run("refused "+c.name, func(t *testing.T) { upgradeRefused(t, s, c.args, c.want, before) })
	}

	// As built, slot A is a squashfs with its kernel and initrd beside it
	// (GRUB cannot read its zstd).
	if out := s.MustRun("sudo ls /run/ros/state/A.boot"); !contains(out, "vmlinuz") || !contains(out, "initrd") {
		t.Errorf("slot A as built: /run/ros/state/A.boot holds %q, want vmlinuz and initrd", out)
	}
	if regexpLines(before, `(?m)^A\s.*squashfs\s*$`) == nil {
		t.Errorf("slot A as built is not a squashfs:\n%s", before)
	}

	// A to B: the derived image on /dev/vdc.
	upStart := time.Now()
	out := s.MustRun("sudo ros os upgrade --no-reboot --file /dev/vdc")
	t.Logf("ros os upgrade took %s:\n%s", time.Since(upStart).Round(time.Second), out)
	if !contains(out, "version "+vb) || !contains(out, "signature: good") || !contains(out, "slot B (version "+vb+") will be tried at the next boot") {
		t.Fatalf("upgrade: %s", out)
	}
	list := s.MustRun("sudo ros os list")
	if regexpLines(list, `B\s+`+regexp.QuoteMeta(vb)+`\s+-\s+-\s+yes\s+-\s+3`) == nil {
		t.Errorf("ros os list before the reboot:\n%s", list)
	}
	mark := m.Mark()
	s.Run("sudo ros reboot")
	s.Close()
	if got := bootedSlot(m, mark); got != "B, version "+vb {
		t.Fatalf("after the upgrade: booted %s", got)
	}
	s = m.SSH("rancher", key, 5*time.Minute)
	t.Run("A to B", func(t *testing.T) { check(t, s, vb) })

	// B to A: the original version from the registry, with the
	// credentials of rancher.registry_auths, which are never printed.
	auth := base64.StdEncoding.EncodeToString([]byte("rosos:s3cret-pass"))
	s.MustRun(fmt.Sprintf("printf 'rancher:\\n  registry_auths:\\n    %s:\\n      auth: %s\\n' | sudo ros config merge", registry, auth))
	for _, cmd := range []string{"sudo ros config export", "sudo ros config export --full --private", "sudo ros config get rancher",
		"sudo ros config get rancher.registry_auths", "sudo cat /run/ros/config.yml"} {
		if out, _ := s.Run(cmd); contains(out, auth) || contains(out, "s3cret") {
			t.Errorf("%s printed the credentials:\n%s", cmd, out)
		}
	}
	if out := s.MustRun("sudo stat -c %a:%U /var/lib/rancher/conf/cloud-config.yml"); strings.TrimSpace(out) != "600:root" {
		t.Errorf("cloud-config.yml: %s, want 600:root", out)
	}
	t.Run("refused unsigned image from a registry", func(t *testing.T) {
		upgradeRefused(t, s, "--plain-http --image "+registry+"/rosos/os:unsigned", "the image is not signed", s.MustRun("sudo ros os list"))
	})
	if out, err := s.Run("sudo ros os upgrade --no-reboot --plain-http --image " + registry + "/rosos/nothing:1"); err == nil || !contains(out, "pull") {
		t.Errorf("upgrade from a missing image: err %v\n%s", err, out)
	}
	ref := registry + "/rosos/os:" + v
	mark = m.Mark()
	upStart = time.Now()
	out = s.MustRun("sudo ros os upgrade --plain-http --image " + ref)
	t.Logf("ros os upgrade --image took %s:\n%s", time.Since(upStart).Round(time.Second), out)
	if !contains(out, "pulled "+ref) || !contains(out, "signature: good") || !contains(out, "slot A (version "+v+")") {
		t.Fatalf("upgrade back from the registry: %s", out)
	}
	s.Close()
	if got := bootedSlot(m, mark); got != "A, version "+v {
		t.Fatalf("after the upgrade back: booted %s", got)
	}
	s = m.SSH("rancher", key, 5*time.Minute)
	t.Run("B to A", func(t *testing.T) {
		check(t, s, v)
		// The squashfs slot A was replaced by a directory, and the kernel
		// and initrd that were beside it are gone with it.
		if out := s.MustRun("sudo ls /run/ros/state"); contains(out, "A.boot") {
			t.Errorf("slot A rewritten, but A.boot is still on RANCHER_STATE:\n%s", out)
		}
		if list := s.MustRun("sudo ros os list"); regexpLines(list, `(?m)^A\s.*directory\s*$`) == nil {
			t.Errorf("slot A rewritten by the upgrade is not a directory:\n%s", list)
		}
	})

	// Rollback: B booted well before, so it is the other good slot. A
	// becomes the default once the boot assessment marks it good.
	s.Eventually("sudo ros os list", 5*time.Minute, func(list string) bool {
		return regexpLines(list, `A\s+`+regexp.QuoteMeta(v)+`\s+yes\s+yes\s+-\s+yes\s+3`) != nil &&
			regexpLines(list, `B\s+`+regexp.QuoteMeta(vb)+`\s+-\s+-\s+-\s+yes`) != nil
	})
	mark = m.Mark()
	s.Run("sudo ros os rollback")
	s.Close()
	if got := bootedSlot(m, mark); got != "B, version "+vb {
		t.Fatalf("after the rollback: booted %s", got)
	}
	s = m.SSH("rancher", key, 5*time.Minute)
	defer s.Close()
	t.Run("rollback", func(t *testing.T) { check(t, s, vb) })
}

// TestBrokenUpgradeRollsBack: an image whose /sbin/init cannot run is
// tried, fails its tries, and the node comes back on the old slot by
// itself, with the failed attempt shown.
func TestBrokenUpgradeRollsBack(t *testing.T) {
	v := Version(t)
	broken := DeriveOSImage(t, OSImage(t), v+"-broken", append(OSRelease(v+"-broken"),
		File{Name: "usr/bin/ros-init", Mode: 0o755, Body: "this is not a program\n"}))
	key := NewKey(t)
	m := New(t, Options{UserData: SeedConfig(key, ""), Disks: []string{broken}})
	m.Boot()
	s := m.SSH("rancher", key, 5*time.Minute)
	start := time.Now()
	mark := m.Mark()
	s.MustRun("sudo ros os upgrade --file /dev/vdc")
	s.Close()
	// Three tries of slot B, each ending in stage 1's failure and a reboot,
	// then slot A.
	m.WaitConsoleFrom(mark, `(?s)(ros: GRUB: booting slot B.*){3}ros: GRUB: booting slot A`, 10*time.Minute)
	if !contains(m.Console()[mark:], "ros: stage 1 failed") {
		t.Errorf("the broken slot's boots did not report stage 1's failure")
	}
	if got := bootedSlot(m, mark); got != "A, version "+v {
		t.Fatalf("after the broken upgrade: booted %s", got)
	}
	t.Logf("back on slot A %s after the upgrade command", time.Since(start).Round(time.Second))
	s = m.SSH("rancher", key, 5*time.Minute)
	defer s.Close()
	list := s.MustRun("sudo ros os list")
	if regexpLines(list, `A\s+`+regexp.QuoteMeta(v)+`\s+yes\s+yes`) == nil || regexpLines(list, `B\s+.*\s0\s+yes`) == nil {
		t.Errorf("ros os list after the rollback:\n%s", list)
	}
}

// TestPowerCutDuringUpgrade pulls the plug at several points of `ros os
// upgrade`: each time the node boots a good slot and SSH works; then the
// upgrade, run whole, still works.
func TestPowerCutDuringUpgrade(t *testing.T) {
	v := Version(t)
	vb := v + "-b"
	derived := DeriveOSImage(t, OSImage(t), vb, OSRelease(vb))
	key := NewKey(t)
	m := New(t, Options{UserData: SeedConfig(key, ""), Disks: []string{derived}})
	m.Boot()
	s := m.SSH("rancher", key, 5*time.Minute)
	// Right as the slot's writing starts, half-way, and once it is whole.
	for _, at := range []string{`writing slot B`, `\b[4-6]\d% `, `slot B written in`} {
		re := regexp.MustCompile(at)
		out, ok := s.RunUntil("sudo ros os upgrade --no-reboot --file /dev/vdc", 10*time.Minute, re.MatchString)
		if !ok {
			t.Fatalf("the upgrade did not reach %q:\n%s", at, out)
		}
		m.Kill()
		s.Close()
		m.Boot() // the console starts anew with each Boot
		got := bootedSlot(m, 0)
		if got != "A, version "+v && got != "B, version "+vb {
			t.Fatalf("power cut at %q: booted %s", at, got)
		}
		s = m.SSH("rancher", key, 5*time.Minute)
		t.Logf("power cut at %q: booted slot %s; ros os list:\n%s", at, got, s.MustRun("sudo ros os list"))
		if got != "A, version "+v {
			// The cut came after the slot was whole and GRUB was told to
			// try it: a good outcome too, but the loop needs slot A running.
			// B must first be marked good (the boot assessment).
			s.Eventually("sudo ros os list", 5*time.Minute, func(list string) bool {
				return regexpLines(list, `B\s+\S+\s+yes\s+yes`) != nil
			})
			s.MustRun("sudo ros os rollback --no-reboot")
			mark := m.Mark()
			s.Run("sudo ros reboot")
			s.Close()
			if got := bootedSlot(m, mark); got != "A, version "+v {
				t.Fatalf("rollback after the cut: booted %s", got)
			}
			s = m.SSH("rancher", key, 5*time.Minute)
		}
		// Slot A marked good again (the boot assessment) before the next cut.
		s.Eventually("sudo ros os list", 5*time.Minute, func(list string) bool {
			return regexpLines(list, `A\s+`+regexp.QuoteMeta(v)+`\s+yes\s+yes\s+-\s+yes\s+3`) != nil
		})
	}
	mark := m.Mark()
	s.MustRun("sudo ros os upgrade --file /dev/vdc")
	s.Close()
	if got := bootedSlot(m, mark); got != "B, version "+vb {
		t.Fatalf("the whole upgrade after the cuts: booted %s", got)
	}
	s = m.SSH("rancher", key, 5*time.Minute)
	s.Close()
}

// upgradeRefused runs ros os upgrade with args, which must fail with want
// and leave the slots as ros os list showed them (before), with nothing
// written: no SLOT.new, nothing in /etc.
func upgradeRefused(t *testing.T, s *SSH, args, want, before string) {
	t.Helper()
	out, err := s.Run("sudo ros os upgrade --no-reboot " + args)
	if err == nil || !contains(out, want) {
		t.Fatalf("ros os upgrade %s: err %v, want an error with %q:\n%s", args, err, want, out)
	}
	t.Logf("refused:\n%s", out)
	if after := s.MustRun("sudo ros os list"); after != before {
		t.Errorf("ros os list changed:\n%s\nwas:\n%s", after, before)
	}
	if out, _ := s.Run("sudo ls /run/ros/state; ls /etc/evil-upgrade"); !contains(out, "No such file") || contains(out, ".new") {
		t.Errorf("something was written: %s", out)
	}
}

// copyFile copies p into the test's temporary directory.
func copyFile(t *testing.T, p string) string {
	t.Helper()
	in, err := os.Open(p)
	must(t, err)
	defer in.Close()
	out := filepath.Join(t.TempDir(), filepath.Base(p))
	f, err := os.Create(out)
	must(t, err)
	_, err = io.Copy(f, in)
	must(t, err)
	must(t, f.Close())
	return out
}
