//go:build e2e && release

package e2e

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestUpgradeAcrossReleases: a node of an earlier release (another Debian
// suite, kernel and Docker: ROS_PREVIOUS_IMAGE, a disk image `make image`
// built from an earlier commit) is upgraded with `ros os upgrade --file` to
// this build's OS image, boots it, keeps its data and the user's
// containers, and rolls back to the earlier release. It needs a disk image
// `make test` does not build: `make test-release ROS_PREVIOUS_IMAGE=...`
// (build tag release).
func TestUpgradeAcrossReleases(t *testing.T) {
	prev := os.Getenv("ROS_PREVIOUS_IMAGE")
	if prev == "" {
		t.Fatal("ROS_PREVIOUS_IMAGE is not set: name the disk image (ros.img) of an earlier release to upgrade from")
	}
	v := Version(t)
	key := NewKey(t)
	m := New(t, Options{Image: prev, UserData: SeedConfig(key, ""), Disks: []string{OSImage(t)}})
	m.Boot()
	first := bootedSlot(m, 0)
	prevVersion := strings.TrimPrefix(first, "A, version ")
	if prevVersion == first || prevVersion == v {
		t.Fatalf("first boot: %s; want slot A of a version other than %s", first, v)
	}
	s := m.SSH("rancher", key, 5*time.Minute)
	prevKernel := strings.TrimSpace(s.MustRun("uname -r"))
	prevDocker := strings.TrimSpace(s.Eventually("docker info --format '{{.ServerVersion}}'", 5*time.Minute, func(out string) bool {
		return regexp.MustCompile(`^\d+\.`).MatchString(strings.TrimSpace(out))
	}))
	t.Logf("earlier release: %s, kernel %s, docker %s", prevVersion, prevKernel, prevDocker)
	s.MustRun("echo home > /home/rancher/keep")
	if out, err := s.RunInput("docker load", bytes.NewReader(helloImage(t))); err != nil {
		t.Fatalf("docker load: %v\n%s", err, out)
	}
	s.MustRun("docker create --name keep e2e/hello:1")
	s.Eventually("sudo ros os list", 5*time.Minute, func(list string) bool {
		return regexpLines(list, `A\s+`+regexp.QuoteMeta(prevVersion)+`\s+yes\s+yes\s+-\s+yes\s+3`) != nil
	})

	start := time.Now()
	out := s.MustRun("sudo ros os upgrade --no-reboot --file /dev/vdc")
	t.Logf("ros os upgrade took %s:\n%s", time.Since(start).Round(time.Second), out)
	if !contains(out, "slot B (version "+v+") will be tried at the next boot") {
		t.Fatalf("upgrade: %s", out)
	}
	mark := m.Mark()
	s.Run("sudo ros reboot")
	s.Close()
	if got := bootedSlot(m, mark); got != "B, version "+v {
		t.Fatalf("after the upgrade: booted %s", got)
	}
	s = m.SSH("rancher", key, 5*time.Minute)
	t.Run("this release, with the data", func(t *testing.T) {
		if want, got := buildSetting(t, "images/kernel/version", "KERNEL_RELEASE"), strings.TrimSpace(s.MustRun("uname -r")); got != want {
			t.Errorf("kernel %q, want %q", got, want)
		}
		dv := s.Eventually("docker info --format '{{.ServerVersion}}'", 5*time.Minute, func(out string) bool {
			return strings.HasPrefix(strings.TrimSpace(out), "26.")
		})
		t.Logf("docker %s after the upgrade", strings.TrimSpace(dv))
		if out := s.MustRun("cat /home/rancher/keep"); strings.TrimSpace(out) != "home" {
			t.Errorf("/home/rancher/keep: %q", out)
		}
		s.Eventually("docker ps -a --format '{{.Names}}'", 3*time.Minute, func(out string) bool { return contains(out, "keep") })
		if out := s.MustRun("docker start -a keep"); !contains(out, "hello from a user container") {
			t.Errorf("the earlier engine's container under this one: %s", out)
		}
		s.Eventually("sudo ros service list", 3*time.Minute, func(out string) bool { return strings.Count(out, "running") >= len(defaultServices) })
	})

	// Back to the earlier release, once this slot has been marked good.
	s.Eventually("sudo ros os list", 5*time.Minute, func(list string) bool {
		return regexpLines(list, `B\s+`+regexp.QuoteMeta(v)+`\s+yes\s+yes\s+-\s+yes\s+3`) != nil
	})
	mark = m.Mark()
	s.Run("sudo ros os rollback")
	s.Close()
	if got := bootedSlot(m, mark); got != "A, version "+prevVersion {
		t.Fatalf("after the rollback: booted %s", got)
	}
	s = m.SSH("rancher", key, 5*time.Minute)
	defer s.Close()
	t.Run("rolled back to the earlier release", func(t *testing.T) {
		if got := strings.TrimSpace(s.MustRun("uname -r")); got != prevKernel {
			t.Errorf("kernel %q, want %q", got, prevKernel)
		}
		s.Eventually("docker ps -a --format '{{.Names}}'", 5*time.Minute, func(out string) bool { return contains(out, "keep") })
		if out := s.MustRun("cat /home/rancher/keep"); strings.TrimSpace(out) != "home" {
			t.Errorf("/home/rancher/keep: %q", out)
		}
	})
}
