//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ISO is the live ISO under test (make iso).
func ISO(t *testing.T) string { return builtFile(t, "ROS_ISO", "make iso") }

// TestInstallFromISO boots the live ISO with a blank disk, installs to it
// with a cloud-config, checks that a second install is refused without
// --force, then boots the disk alone: the cloud-config is applied.
func TestInstallFromISO(t *testing.T) {
	blank := filepath.Join(t.TempDir(), "blank.img")
	f, err := os.Create(blank)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.Truncate(blank, 8<<30); err != nil { // sparse: a blank 8 GiB disk
		t.Fatal(err)
	}
	live, installed := NewKey(t), NewKey(t)
	m := New(t, Options{Image: blank, CDROM: ISO(t), UserData: SeedConfig(live, "")})
	m.Boot()
	m.WaitConsole(`ros: GRUB: live boot`, 5*time.Minute)
	s := m.SSH("rancher", live, 8*time.Minute)
	cc := fmt.Sprintf("#cloud-config\nhostname: installed-node\nssh_authorized_keys:\n  - %s\n", installed.Authorized)
	if _, err := s.RunInput("cat > /tmp/cc.yml", strings.NewReader(cc)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	out := s.MustRun("sudo ros install --device /dev/vda --cloud-config /tmp/cc.yml --no-reboot")
	t.Logf("ros install took %s:\n%s", time.Since(start).Round(time.Second), out)
	if out, err := s.Run("sudo ros install --device /dev/vda --no-reboot"); err == nil || !contains(out, "/dev/vda is not blank: it has partitions") {
		t.Errorf("a second install without --force: err %v\n%s", err, out)
	}
	s.Close()
	m.Kill()
	m.EjectCD()
	m.Boot() // the console starts anew with each Boot
	if got := bootedSlot(m, 0); got != "A, version "+Version(t) {
		t.Fatalf("the installed disk booted %s", got)
	}
	s = m.SSH("rancher", installed, 5*time.Minute)
	defer s.Close()
	if h := strings.TrimSpace(s.MustRun("hostname")); h != "installed-node" {
		t.Errorf("hostname %q, want installed-node from the install's cloud-config", h)
	}
	if out := s.MustRun("sudo ros os list"); regexpLines(out, `A\s+\S+\s+yes\s+yes`) == nil {
		t.Errorf("ros os list on the installed disk:\n%s", out)
	}
	// The disk template is made for a 5 GiB disk; on this 8 GiB one the
	// persistent partition grew at the first boot.
	out = s.MustRun("df -BM --output=size /var/lib/rancher | tail -1")
	if mb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(out), "M")); mb < 4500 {
		t.Errorf("persistent storage on the installed 8 GiB disk: %s", out)
	}
	t.Logf("persistent storage on the installed 8 GiB disk: %s", strings.TrimSpace(out))
}
