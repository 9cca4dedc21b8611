package host

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/rosos/ros/config"
	"github.com/rosos/ros/internal/paths"
	"go.yaml.in/yaml/v3"
	"golang.org/x/sys/unix"
)

// SetHostname sets the host name (rancher when empty) and writes
// /etc/hostname and /etc/hosts.
func SetHostname(name string) error {
	if name == "" {
		name = "rancher"
	}
	if err := unix.Sethostname([]byte(name)); err != nil {
		return fmt.Errorf("set %q: %w", name, err)
	}
	// In place, not by rename: containers bind /etc/hosts, and a bind
	// keeps the file it was made with.
	if err := os.WriteFile("/etc/hostname", []byte(name+"\n"), 0o644); err != nil {
		return err
	}
	hosts := fmt.Sprintf("127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\tlocalhost ip6-localhost ip6-loopback\n", name)
	if b, err := os.ReadFile("/etc/hosts"); err != nil || string(b) != hosts {
		return os.WriteFile("/etc/hosts", []byte(hosts), 0o644)
	}
	return nil
}

// PublishConfig writes the merged config for the services that read it
// (paths.paths.MergedConfig), without registry credentials.
func PublishConfig(cfg config.Config) error {
	// Services do not pull: registry credentials stay with the manager.
	cfg.Rancher.RegistryAuths = nil
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return err
	}
	return config.WriteAtomic(paths.MergedConfig, b, 0o600)
}

// PrepareHome makes the login user's home (persistent, on /home) if it
// is not there, owned by uid (and the group of the same number) with
// mode 0750, as the console expects it. The console copies its
// /etc/skel into a home that has neither .bashrc nor .profile.
func PrepareHome(home string, uid int) error {
	if err := os.MkdirAll(home, 0o750); err != nil {
		return err
	}
	if err := os.Chown(home, uid, uid); err != nil {
		return err
	}
	return os.Chmod(home, 0o750)
}

// AuthorizeKeys writes keys as the login user's authorized_keys (in home,
// owned by uid), replacing what was there: the config is the truth.
func AuthorizeKeys(home string, uid int, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	dir := filepath.Join(home, ".ssh")
	for _, d := range []string{home, dir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
		if err := os.Chown(d, uid, uid); err != nil {
			return err
		}
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return err
	}
	p := filepath.Join(dir, "authorized_keys")
	if err := config.WriteAtomic(p, []byte(strings.Join(keys, "\n")+"\n"), 0o600); err != nil {
		return err
	}
	return os.Chown(p, uid, uid)
}
