//go:build e2e

package e2e

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"
)

// The cloud-config of TestCloudConfigNoCloud: every kind of key a user
// gives at first boot.
const noCloudExtra = `hostname: seeded-node
write_files:
  - path: /etc/ros-test/host-file
    permissions: "0600"
    owner: rancher:rancher
    content: |
      written on the host
  - path: /opt/ros-test/b64
    permissions: 0640
    encoding: b64
    content: %s
  - path: /opt/ros-test/appended
    content: "line1\n"
  - path: /opt/ros-test/appended
    append: true
    content: "line2\n"
  - path: /etc/ros-test/in-console
    container: console
    content: in the console's root
bootcmd:
  - echo bootcmd-ran >> /var/lib/rancher/bootcmd-count
runcmd:
  - [sh, -c, "echo runcmd-list > /opt/ros-test/runcmd-list"]
  -
  - ""
  - echo runcmd-string $(hostname) > /opt/ros-test/runcmd-string
rancher:
  sysctl:
    vm.swappiness: 13
    vm.min_free_kbytes: 16384
  network:
    interfaces:
      eth0:
        dhcp: true
      eth1:
        address: 192.168.77.5/24
        mtu: 1400
      eth2:
        vlans: "100,200:vlan-mgmt"
      br0:
        bridge: true
        address: 192.168.78.1/24
      eth3:
        bridge: br0
      bond0:
        bond_opts: {mode: active-backup, miimon: 100}
        address: 192.168.79.1/24
      eth4:
        bond: bond0
`

// TestCloudConfigNoCloud: a NoCloud seed's hostname, keys, write_files,
// bootcmd, runcmd, sysctl, a static address on a second NIC, a VLAN, a
// bridge and a bond are applied; ros config set changes DNS, an address
// (the old one goes) and the host name live, --dry-run changes nothing, a bad value is refused naming the
// key, services_include starts and stops a service; what was set survives
// a reboot; and a bad seed document at the next boot is reported and
// skipped, the node answering SSH with the earlier key.
func TestCloudConfigNoCloud(t *testing.T) {
	key := NewKey(t)
	ud := SeedConfig(key, fmt.Sprintf(noCloudExtra, base64.StdEncoding.EncodeToString([]byte("decoded b64\n"))))
	// The OEM layer is under the seed's: its hostname loses, its sysctl stays.
	m := New(t, Options{UserData: ud, NICs: 4, OEM: "hostname: oem-node\nrancher:\n  sysctl:\n    vm.dirty_ratio: 19\n"})
	m.Boot()
	s := m.SSH("rancher", key, 5*time.Minute)

	t.Run("hostname", func(t *testing.T) {
		if h := strings.TrimSpace(s.MustRun("hostname")); h != "seeded-node" {
			t.Fatalf("hostname %q", h)
		}
	})
	t.Run("write_files", func(t *testing.T) {
		out := s.MustRun("sudo stat -c '%a %U' /proc/1/root/etc/ros-test/host-file && sudo cat /proc/1/root/etc/ros-test/host-file")
		if !contains(out, "600 rancher") || !contains(out, "written on the host") {
			t.Errorf("host file: %s", out)
		}
		out = s.MustRun("stat -c %a /opt/ros-test/b64 && sudo cat /opt/ros-test/b64 /opt/ros-test/appended")
		if !contains(out, "640") || !contains(out, "decoded b64") || !contains(out, "line1\nline2") {
			t.Errorf("b64/append: %s", out)
		}
		if out := s.MustRun("cat /etc/ros-test/in-console"); !contains(out, "in the console's root") {
			t.Errorf("container file: %s", out)
		}
	})
	t.Run("runcmd", func(t *testing.T) {
		s.Eventually("cat /opt/ros-test/runcmd-list /opt/ros-test/runcmd-string", 3*time.Minute, func(out string) bool {
			return contains(out, "runcmd-list") && contains(out, "runcmd-string seeded-node")
		})
		if out := s.MustRun("cat /var/lib/rancher/bootcmd-count"); strings.Count(out, "bootcmd-ran") != 1 {
			t.Errorf("bootcmd ran %d times: %q", strings.Count(out, "bootcmd-ran"), out)
		}
	})
	t.Run("sysctl", func(t *testing.T) {
		if out := strings.TrimSpace(s.MustRun("cat /proc/sys/vm/swappiness /proc/sys/vm/dirty_ratio")); out != "13\n19" {
			t.Errorf("vm.swappiness, vm.dirty_ratio (OEM): %q", out)
		}
		// The user's reserve wins over the base PID 1 sets.
		if out := strings.TrimSpace(s.MustRun("cat /proc/sys/vm/min_free_kbytes")); out != "16384" {
			t.Errorf("vm.min_free_kbytes: %q, want the configured 16384", out)
		}
	})
	t.Run("network", func(t *testing.T) {
		defer func() {
			if t.Failed() {
				out, _ := s.Run("sudo tail -40 /var/log/system/network.log")
				t.Logf("network.log:\n%s", out)
			}
		}()
		out := s.Eventually("ip -o addr show dev eth1; ip -o link show dev eth1", 2*time.Minute, func(out string) bool {
			return contains(out, "192.168.77.5/24")
		})
		if !contains(out, "mtu 1400") {
			t.Errorf("eth1: %s", out)
		}
		out = s.Eventually("ip -d -o link show", time.Minute, func(out string) bool {
			return contains(out, "eth2.100@eth2") && contains(out, "vlan-mgmt@eth2") &&
				regexpLines(out, `eth3: .* master br0`) != nil && regexpLines(out, `eth4: .* master bond0`) != nil
		})
		if !contains(out, "vlan protocol 802.1Q id 100") || !contains(out, "id 200") {
			t.Errorf("vlans: %s", out)
		}
		if out := s.MustRun("cat /sys/class/net/bond0/bonding/mode; ip -o addr show dev bond0; ip -o addr show dev br0"); !contains(out, "active-backup") || !contains(out, "192.168.79.1/24") || !contains(out, "192.168.78.1/24") {
			t.Errorf("bond/bridge: %s", out)
		}
	})
	t.Run("set DNS live", func(t *testing.T) {
		out := s.MustRun("sudo ros config set rancher.network.dns.nameservers '[10.0.2.3, 9.9.9.9]'")
		if !contains(out, "changed rancher.network.dns") || !contains(out, "restarted: network") {
			t.Errorf("set: %s", out)
		}
		s.Eventually("cat /etc/resolv.conf", time.Minute, func(out string) bool { return contains(out, "nameserver 9.9.9.9") })
		if out := s.MustRun("sudo ros config get rancher.network.dns.nameservers"); !contains(out, "9.9.9.9") {
			t.Errorf("get: %s", out)
		}
	})
	t.Run("change an address live", func(t *testing.T) {
		s.MustRun("sudo ros config set rancher.network.interfaces.eth1.address 192.168.77.6/24")
		out := s.Eventually("ip -o addr show dev eth1", time.Minute, func(out string) bool {
			return contains(out, "192.168.77.6/24") && !contains(out, "192.168.77.5/")
		})
		t.Logf("eth1 after the change: %s", out)
	})
	t.Run("set hostname live", func(t *testing.T) {
		s.MustRun("sudo ros config set hostname renamed-node")
		if h := strings.TrimSpace(s.MustRun("hostname")); h != "renamed-node" {
			t.Fatalf("hostname %q", h)
		}
	})
	t.Run("dry run changes nothing", func(t *testing.T) {
		before := s.MustRun("sudo sha256sum /var/lib/rancher/conf/cloud-config.yml")
		out := s.MustRun("sudo ros config set --dry-run rancher.sysctl.vm.swappiness 20")
		if !contains(out, "would change rancher.sysctl") || !contains(out, "dry run: nothing was changed") {
			t.Errorf("dry run: %s", out)
		}
		if after := s.MustRun("sudo sha256sum /var/lib/rancher/conf/cloud-config.yml"); after != before {
			t.Errorf("the config file changed on a dry run")
		}
		if v := strings.TrimSpace(s.MustRun("cat /proc/sys/vm/swappiness")); v != "13" {
			t.Errorf("vm.swappiness changed on a dry run: %s", v)
		}
	})
	t.Run("bad input refused", func(t *testing.T) {
		before := s.MustRun("sudo sha256sum /var/lib/rancher/conf/cloud-config.yml")
		for cmd, want := range map[string]string{
			"sudo ros config set rancher.network.interfaces.eth0.mtu big":                               "rancher.network.interfaces.eth0.mtu: want a whole number",
			"sudo ros config set rancher.netwrk.dns 1":                                                  "rancher.netwrk: unknown key",
			"sudo ros config set hostname '[a'":                                                         "not valid YAML",
			"echo 'rancher: {sysctl: [1]}' | sudo ros config merge":                                     "rancher.sysctl: want a map",
			"printf 'write_files:\\n- path: rel\\n' > /tmp/bad.yml && ros config validate /tmp/bad.yml": "write_files[0].path",
		} {
			out, err := s.Run(cmd)
			if err == nil || !contains(out, want) {
				t.Errorf("%s: err %v, output %q; want an error with %q", cmd, err, out, want)
			}
		}
		if after := s.MustRun("sudo sha256sum /var/lib/rancher/conf/cloud-config.yml"); after != before {
			t.Errorf("a refused change changed the config file")
		}
	})
	t.Run("services_include", func(t *testing.T) {
		s.MustRun("sudo ros config set rancher.services_include.debug-shell true")
		s.Eventually("true", 2*time.Minute, allRunning(t, s, "debug-shell"))
		s.MustRun("sudo ros config set rancher.services_include.debug-shell false")
		s.Eventually("sudo ros service ps", time.Minute, func(out string) bool { return !contains(out, "debug-shell") })
	})
	t.Run("export", func(t *testing.T) {
		out := s.MustRun("sudo ros config export")
		if !contains(out, "renamed-node") || !contains(out, "9.9.9.9") || contains(out, "rosos/udev") {
			t.Errorf("export: %s", out)
		}
		if out := s.MustRun("sudo ros config export --full"); !contains(out, "rosos/udev") {
			t.Errorf("export --full lacks the built-in services: %.400s", out)
		}
	})

	// Reboot with a bad seed: it is reported and skipped; what was set and
	// the seed's earlier (good) document still apply.
	s.Close()
	m.PowerButton()
	m.WaitExit(3 * time.Minute)
	m.SetUserData("#cloud-config\nssh_authorized_keys: [other]\nrancher:\n  netwrk: {}\n")
	m.Boot()
	m.WaitConsole(`config: datasource nocloud: .*rancher.netwrk: unknown key.*skipped`, 5*time.Minute)
	s = m.SSH("rancher", key, 5*time.Minute)
	defer s.Close()
	if h := strings.TrimSpace(s.MustRun("hostname")); h != "renamed-node" {
		t.Errorf("after reboot: hostname %q, want the one set (renamed-node)", h)
	}
	if out := s.MustRun("cat /etc/resolv.conf"); !contains(out, "9.9.9.9") {
		t.Errorf("after reboot: resolv.conf %s", out)
	}
	if out := s.MustRun("cat /var/lib/rancher/bootcmd-count"); strings.Count(out, "bootcmd-ran") != 2 {
		t.Errorf("bootcmd runs every boot: %q", out)
	}
	if out := s.MustRun("cat /var/log/ros-config.log"); !contains(out, "rancher.netwrk") {
		t.Errorf("/var/log/ros-config.log: %s", out)
	}
}

// TestConfigDriveAndMetadataService: a ConfigDrive gives the host name and
// a key; the drive's config turns on the EC2 datasource, and the metadata
// service (served to the guest at 169.254.169.254) adds a second key, a
// file and a runcmd, applied in the same boot; the OpenStack metadata
// service gives a #! script, run once. The kernel command line's
// rancher.* keys are the last layer: they win over the drive's.
func TestConfigDriveAndMetadataService(t *testing.T) {
	k1, k2 := NewKey(t), NewKey(t)
	m := New(t, Options{
		Image: ImageWithCmdline(t, "rancher.sysctl.vm.swappiness=17 rancher.network.dns.search=[cmdline.test] rancher.bogus=1"),
		ConfigDrive: &ConfigDrive{
			MetaJSON: fmt.Sprintf(`{"uuid": "cd-uuid-1", "hostname": "drive-node", "public_keys": {"k1": %q}}`, k1.Authorized),
			UserData: "#cloud-config\nrancher:\n  cloud_init:\n    datasources: [configdrive, ec2, openstack]\n  sysctl: {vm.swappiness: 5}\n",
		},
		Metadata: map[string]string{
			"/openstack/latest/meta_data.json":            `{"uuid": "os-uuid-1"}`,
			"/openstack/latest/user_data":                 "#!/bin/sh\necho script-ran-once >> /var/lib/rancher/os-script-count\n",
			"/latest/meta-data/instance-id":               "i-0123456789\n",
			"/latest/meta-data/public-keys/":              "0=k2\n",
			"/latest/meta-data/public-keys/0/openssh-key": k2.Authorized + "\n",
			"/latest/user-data":                           "#cloud-config\nwrite_files:\n  - path: /opt/from-ec2\n    content: metadata service\nruncmd:\n  - echo ec2-runcmd > /opt/ec2-runcmd\n",
		},
	})
	m.Boot()
	s := m.SSH("rancher", k1, 5*time.Minute)
	defer s.Close()
	if h := strings.TrimSpace(s.MustRun("hostname")); h != "drive-node" {
		t.Errorf("hostname %q, want drive-node from meta_data.json", h)
	}
	s.Eventually("cat /opt/from-ec2 /opt/ec2-runcmd", 3*time.Minute, func(out string) bool {
		return contains(out, "metadata service") && contains(out, "ec2-runcmd")
	})
	if out := s.Eventually("cat /var/lib/rancher/os-script-count", time.Minute, func(out string) bool { return contains(out, "script-ran-once") }); strings.Count(out, "script-ran-once") != 1 {
		t.Errorf("the OpenStack user-data script ran %d times: %q", strings.Count(out, "script-ran-once"), out)
	}
	s2 := m.SSH("rancher", k2, time.Minute)
	s2.MustRun("true")
	s2.Close()
	if out := s.MustRun("sudo ls /var/lib/rancher/conf/cloud-config.d"); !contains(out, "configdrive.yml") || !contains(out, "ec2.yml") || !contains(out, "openstack.yml") {
		t.Errorf("cloud-config.d: %s", out)
	}
	if v := strings.TrimSpace(s.MustRun("cat /proc/sys/vm/swappiness")); v != "17" {
		t.Errorf("vm.swappiness %s, want 17 from the kernel command line", v)
	}
	s.Eventually("cat /etc/resolv.conf", time.Minute, func(out string) bool { return contains(out, "search cmdline.test") })
	if !contains(m.Console(), "kernel command line: rancher.bogus: unknown key") {
		t.Errorf("the bad kernel command line key was not reported")
	}
	out, err := s.Run("sudo ros config set --dry-run rancher.sysctl.vm.swappiness 3")
	if err != nil || !contains(out, "overridden: rancher.sysctl.vm.swappiness (the kernel command line sets it)") {
		t.Errorf("set of a key the command line sets: %v\n%s", err, out)
	}
}
