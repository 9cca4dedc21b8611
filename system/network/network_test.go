package network

import (
	"context"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/rosos/ros/config"
)

func TestMatch(t *testing.T) {
	ifaces := map[string]config.Interface{
		"eth*":                  {DHCP: true},
		"eth1":                  {Address: "10.0.0.5/24"},
		"mac=52:54:00:12:34:99": {MTU: 9000},
		"ens*":                  {MTU: 1400},
	}
	ifaces["eth2.200"] = config.Interface{Address: "10.2.0.5/24"}
	for _, c := range []struct {
		name, mac string
		vlan      bool
		key       string
	}{
		{"eth0", "52:54:00:12:34:56", false, "eth*"},
		{"eth1", "52:54:00:12:34:57", false, "eth1"},
		{"eth2", "52:54:00:12:34:99", false, "mac=52:54:00:12:34:99"},
		{"ens3", "", false, "ens*"},
		{"wlan0", "", false, ""},
		// VLANs: their parent's MAC and prefix, matched by exact name only.
		{"eth2.100", "52:54:00:12:34:99", true, ""},
		{"eth0.100", "52:54:00:12:34:56", true, ""},
		{"eth2.200", "52:54:00:12:34:99", true, "eth2.200"},
	} {
		_, key, ok := Match(ifaces, c.name, c.mac, c.vlan)
		if key != c.key || ok != (c.key != "") {
			t.Errorf("Match(%s, %s, vlan %v) = %q %v, want %q", c.name, c.mac, c.vlan, key, ok, c.key)
		}
	}
}

func TestResolvConf(t *testing.T) {
	got := ResolvConf([]string{"8.8.8.8", "1.1.1.1"}, []string{"example.com"})
	for _, want := range []string{"search example.com\n", "nameserver 8.8.8.8\nnameserver 1.1.1.1\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("resolv.conf %q lacks %q", got, want)
		}
	}
}

func TestPlanVirtual(t *testing.T) {
	ifs := map[string]config.Interface{
		"bond0": {BondOpts: map[string]string{"mode": "active-backup", "miimon": "100"}, Address: "10.0.0.2/24"},
		"eth1":  {Bond: "bond0"},
		"eth2":  {Bond: "bond1"},
		"br0":   {Bridge: "true", Address: "10.1.0.1/24"},
		"eth3":  {Bridge: "br1"},
		"eth4":  {Vlans: "100"},
	}
	v := PlanVirtual(ifs)
	if len(v.Bonds) != 2 || v.Bonds["bond0"]["mode"] != "active-backup" || strings.Join(v.Bridges, ",") != "br0,br1" {
		t.Fatalf("%+v", v)
	}
	if !Enslaved(ifs["eth1"]) || !Enslaved(ifs["eth3"]) || Enslaved(ifs["br0"]) || Enslaved(ifs["eth4"]) {
		t.Fatal("Enslaved")
	}
	b, err := bond("bond0", ifs["bond0"].BondOpts)
	if err != nil || b.Miimon != 100 || b.Mode != netlink.BOND_MODE_ACTIVE_BACKUP {
		t.Fatalf("bond %+v %v", b, err)
	}
	if _, err := bond("b", map[string]string{"mode": "fastest", "arp_ip": "x"}); err == nil || !strings.Contains(err.Error(), "fastest") || !strings.Contains(err.Error(), "arp_ip") {
		t.Fatalf("bad options: %v", err)
	}
}

func TestStale(t *testing.T) {
	var want []*netlink.Addr
	for _, s := range []string{"10.0.0.5/24", "10.0.0.7/24", "fd00::1/64"} {
		a, err := netlink.ParseAddr(s)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, a)
	}
	// Set the last time: kept, dropped, the same address with another
	// prefix (dropped), an IPv6 one dropped.
	before := []string{"10.0.0.5/24", "10.0.0.6/24", "10.0.0.7/16", "fd00::1/64", "fd00::9/64"}
	got := strings.Join(stale(before, want), " ")
	if got != "10.0.0.6/24 10.0.0.7/16 fd00::9/64" {
		t.Errorf("stale: %s", got)
	}
	if got := stale(nil, want); len(got) != 0 {
		t.Errorf("stale with nothing set before: %v", got)
	}
}

func TestStateFile(t *testing.T) {
	path := t.TempDir() + "/addresses.json"
	c := &Configurator{StateFile: path, Log: slog.New(slog.NewTextHandler(t.Output(), nil))}
	if m := c.loadState(); len(m) != 0 {
		t.Fatalf("no file: %v", m)
	}
	c.set = map[string][]string{"eth1": {"10.0.0.5/24"}}
	c.saveState()
	if m := c.loadState(); strings.Join(m["eth1"], " ") != "10.0.0.5/24" {
		t.Errorf("saved and read: %v", m)
	}
	if err := os.WriteFile(path, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if m := c.loadState(); len(m) != 0 {
		t.Errorf("a damaged file reads as empty: %v", m)
	}
}

func TestMarkReady(t *testing.T) {
	dir := t.TempDir()
	c := &Configurator{ReadyFile: filepath.Join(dir, "configured")}
	c.markReady()
	b, err := os.ReadFile(c.ReadyFile)
	if err != nil {
		t.Fatalf("ready file not written: %v", err)
	}
	if _, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(string(b))); err != nil {
		t.Errorf("ready file holds %q, not a time: %v", b, err)
	}
	// Not written where it cannot be; logged, not fatal.
	(&Configurator{ReadyFile: filepath.Join(dir, "missing", "configured")}).markReady()
	(&Configurator{}).markReady()
}

// TestWatchLinks runs the Configurator in a network namespace of its own
// (a child process made with CLONE_NEWNET, so that no thread of it can
// touch the host's links): a link present at the start is configured, and
// so are a link made after the ready file was written and a link renamed
// into a name the config matches.
func TestWatchLinks(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("a network namespace and links need root")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestWatchLinksHelper$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "ROS_NETWORK_WATCH_HELPER="+t.TempDir())
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	out, err := cmd.CombinedOutput()
	t.Logf("helper:\n%s", out)
	if err != nil {
		t.Fatalf("helper: %v", err)
	}
	if !strings.Contains(string(out), "--- PASS: TestWatchLinksHelper") {
		t.Fatal("the helper did not run")
	}
}

func TestWatchLinksHelper(t *testing.T) {
	dir := os.Getenv("ROS_NETWORK_WATCH_HELPER")
	if dir == "" {
		t.Skip("run by TestWatchLinks in a network namespace of its own")
	}
	// Bridges stand in for NICs: every kernel has them (dummy links
	// are a module that not every build machine has).
	addLink := func(name string) {
		t.Helper()
		if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}); err != nil {
			t.Fatalf("add link %s: %v", name, err)
		}
	}
	addLink("early0")
	c := &Configurator{
		Config: config.Network{Interfaces: map[string]config.Interface{
			"early0": {Address: "10.91.0.1/24"},
			"late*":  {Address: "10.92.0.1/24", MTU: 1400},
		}},
		ResolvPath: filepath.Join(dir, "resolv.conf"),
		ReadyFile:  filepath.Join(dir, "configured"),
		StateFile:  filepath.Join(dir, "addresses.json"),
		Log:        slog.New(slog.NewTextHandler(os.Stdout, nil)),
	}
	ready := make(chan struct{})
	c.OnReady = func() { close(ready) }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("Run returned before it was ready: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("not ready after 30 s")
	}
	hasAddr := func(name, want string) bool {
		l, err := netlink.LinkByName(name)
		if err != nil {
			return false
		}
		addrs, err := netlink.AddrList(l, netlink.FAMILY_V4)
		if err != nil {
			return false
		}
		for _, a := range addrs {
			if a.IPNet.String() == want {
				return l.Attrs().Flags&net.FlagUp != 0
			}
		}
		return false
	}
	waitAddr := func(name, want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !hasAddr(name, want) {
			if time.Now().After(deadline) {
				t.Fatalf("%s is not up with %s 10 s after it appeared", name, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if !hasAddr("early0", "10.91.0.1/24") {
		t.Fatal("early0, present at the start, is not configured when the ready file is written")
	}
	if _, err := os.Stat(c.ReadyFile); err != nil {
		t.Fatalf("ready file: %v", err)
	}

	addLink("late1")
	waitAddr("late1", "10.92.0.1/24")
	if l, _ := netlink.LinkByName("late1"); l.Attrs().MTU != 1400 {
		t.Errorf("late1: MTU %d, want 1400", l.Attrs().MTU)
	}

	addLink("other0") // matches nothing: left alone
	other, err := netlink.LinkByName("other0")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if hasAddr("other0", "10.92.0.1/24") {
		t.Fatal("other0 matches no entry and was configured")
	}
	if err := netlink.LinkSetName(other, "late2"); err != nil {
		t.Fatal(err)
	}
	waitAddr("late2", "10.92.0.1/24")

	// The state file is written after each late link's addresses.
	for _, name := range []string{"early0", "late1", "late2"} {
		deadline := time.Now().Add(10 * time.Second)
		for {
			b, _ := os.ReadFile(c.StateFile)
			if strings.Contains(string(b), `"`+name+`"`) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("state file %s has no %s", b, name)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return 10 s after its context ended")
	}
}
