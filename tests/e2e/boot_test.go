//go:build e2e

package e2e

import (
	"fmt"
	"strconv"
	"testing"
	"time"
)

// Budgets for software emulation (no KVM): generous, since these machines
// are shared. They bound a hang; they do not measure speed.
const (
	bootTimeout     = 6 * time.Minute
	shutdownTimeout = 3 * time.Minute
)

// Boot through GRUB, stage 1 and PID 1 to "boot complete", with rsyslogd
// running in its container and reachable through /dev/log.
func TestBootToCompleteWithSyslog(t *testing.T) {
	v := Version(t)
	m := New(t, Options{UserData: CloudConfig(ProbeService(v, "probe", `
for i in $(seq 60); do [ -S /dev/log ] && break; sleep 1; done
n=$(grep -l '^rsyslogd$' /proc/[0-9]*/comm 2>/dev/null | wc -l)
say "rsyslogd processes=$n"
logger -t probe "hello-from-probe-$$"
for i in $(seq 30); do grep -q "hello-from-probe-$$" /var/log/messages && break; sleep 1; done
grep -q "hello-from-probe-$$" /var/log/messages && say "syslog delivered" || say "syslog lost"
`))})
	m.Boot()
	m.WaitConsole(`ros: GRUB: booting slot A`, bootTimeout)
	m.WaitConsole(`stage1 \d+: switch to the root`, bootTimeout)
	line := m.WaitConsole(`(ros: boot complete in [0-9.]+s \(slot A, version [^,]+, \d+ services\))`, bootTimeout)
	t.Logf("%s", line)
	if n := m.WaitConsole(`PROBE rsyslogd processes=(\d+)`, 2*time.Minute); n == "0" {
		t.Fatal("rsyslogd is not running")
	}
	if got := m.WaitConsole(`PROBE (syslog \w+)`, 2*time.Minute); got != "syslog delivered" {
		t.Fatalf("logger to /dev/log did not reach /var/log/messages: %s", got)
	}
	logTimeline(t, m)
}

// logTimeline prints the boot's stage lines with their times, for the record.
func logTimeline(t *testing.T, m *Machine) {
	for _, l := range regexpLines(m.Console(), `ros: \[ *[0-9.]+\] .*`) {
		t.Log(l)
	}
}

// The power button powers the machine off cleanly: QEMU exits by itself,
// and a file written just before (not synced) is intact on the next boot.
func TestPowerButtonShutsDownCleanly(t *testing.T) {
	v := Version(t)
	token := strconv.FormatInt(time.Now().UnixNano(), 36)
	m := New(t, Options{UserData: CloudConfig(ProbeService(v, "probe", fmt.Sprintf(`
say "found $(cat /probe/file 2>/dev/null || echo nothing)"
echo %s > /probe/file
say "wrote"
`, token)))})
	m.Boot()
	m.WaitConsole(`ros: boot complete`, bootTimeout)
	m.WaitConsole(`PROBE wrote`, 2*time.Minute)
	m.PowerButton()
	m.WaitExit(shutdownTimeout)
	c := m.Console()
	for _, want := range []string{"power button pressed", "shutting down for poweroff", "ros: poweroff now"} {
		if !contains(c, want) {
			t.Errorf("console lacks %q", want)
		}
	}
	m.Boot()
	m.WaitConsole(`ros: boot complete`, bootTimeout)
	if got := m.WaitConsole(`PROBE found (\S+)`, 2*time.Minute); got != token {
		t.Fatalf("after the power button: file holds %q, want %q", got, token)
	}
}

// On a disk bigger than the image, the persistent partition grows to the
// end of the disk at the first boot, once. A file written to persistent
// storage survives a reboot (Ctrl-Alt-Del, which the kernel hands to PID 1
// as SIGINT).
func TestPersistentStorageSurvivesReboot(t *testing.T) {
	v := Version(t)
	m := New(t, Options{DiskGiB: 8, UserData: CloudConfig(ProbeService(v, "probe", `
n=$(cat /probe/boots 2>/dev/null || echo 0)
n=$((n+1))
echo $n > /probe/boots
say "boot number $n"
`))})
	m.Boot()
	m.WaitConsole(`ros: boot complete`, bootTimeout)
	grown := m.WaitConsole(`persistent storage: grown to the end of the disk, (\d+ MiB -> \d+) MiB`, time.Second)
	var from, to int
	fmt.Sscanf(grown, "%d MiB -> %d", &from, &to)
	// 8 GiB less the ESP, the state partition and the GPT's copies.
	if to < 8192-64-3072-8 || to <= from {
		t.Errorf("persistent storage grown %s MiB on an 8 GiB disk", grown)
	}
	t.Logf("persistent storage grown %s MiB", grown)
	if n := m.WaitConsole(`PROBE boot number (\d+)`, 2*time.Minute); n != "1" {
		t.Fatalf("first boot counted %s", n)
	}
	mark := m.Mark()
	m.CtrlAltDel()
	m.WaitConsoleFrom(mark, `ros: reboot now`, shutdownTimeout)
	m.WaitConsoleFrom(mark, `ros: boot complete`, bootTimeout)
	if n := m.WaitConsoleFrom(mark, `PROBE boot number (\d+)`, 2*time.Minute); n != "2" {
		t.Fatalf("after a reboot the count is %s, want 2: persistent storage lost the file", n)
	}
	if c := m.Console()[mark:]; contains(c, "persistent storage: grown") || contains(c, "persistent storage: not grown") {
		t.Errorf("the second boot grew the partition again, or failed to:\n%s", c)
	}
}

// Cutting the power in the middle of the boot (while system containerd
// starts, and again while stage 1 mounts) does not stop the next boot.
func TestPowerCutDuringBoot(t *testing.T) {
	m := New(t, Options{})
	for _, at := range []string{`init \d+: start system containerd`, `stage1 \d+: mount the state partition`} {
		m.Boot()
		m.WaitConsole(at, bootTimeout)
		m.Kill()
	}
	m.Boot()
	m.WaitConsole(`ros: boot complete`, bootTimeout)
}

// An orphaned process (a double fork in a service) and the shims of
// finished containers are reaped: no zombie is left.
func TestOrphansAreReaped(t *testing.T) {
	v := Version(t)
	oneshot := ProbeService(v, "oneshot", `
sh -c 'sleep 2 & sleep 1 & exit 0'
say "oneshot done"
`)
	probe := ProbeService(v, "probe", `
sh -c '(sleep 3 &) ; exit 0'
sleep 25
z=0; names=""
for s in /proc/[0-9]*/stat; do
  st=$(cut -d' ' -f3 "$s" 2>/dev/null)
  if [ "$st" = Z ]; then z=$((z+1)); names="$names $(cut -d' ' -f2 "$s")"; fi
done
say "zombies=$z$names"
`)
	m := New(t, Options{UserData: CloudConfig(oneshot, probe)})
	m.Boot()
	m.WaitConsole(`ros: boot complete`, bootTimeout)
	m.WaitConsole(`PROBE oneshot done`, 2*time.Minute)
	if z := m.WaitConsole(`PROBE (zombies=.*)`, 3*time.Minute); z != "zombies=0" {
		t.Fatalf("left behind: %s", z)
	}
}

// SIGTERM to PID 1 reboots cleanly, and `ros poweroff` powers off: the
// probe sends SIGTERM on the first boot and runs `ros poweroff` (the node's
// own binary) on the second.
func TestSIGTERMRebootsAndRosPoweroff(t *testing.T) {
	v := Version(t)
	m := New(t, Options{UserData: CloudConfig(ProbeService(v, "probe", `
n=$(cat /probe/boots 2>/dev/null || echo 0); n=$((n+1)); echo $n > /probe/boots
say "boot number $n"
sleep 2
if [ $n = 1 ]; then say "sending SIGTERM to PID 1"; kill -TERM 1; fi
if [ $n = 2 ]; then say "running ros poweroff"; /usr/bin/ros poweroff || say "ros poweroff failed: $?"; fi
sleep 600
`))})
	m.Boot()
	m.WaitConsole(`PROBE boot number 1`, bootTimeout)
	m.WaitConsole(`shutting down for reboot`, 2*time.Minute)
	m.WaitConsole(`ros: reboot now`, shutdownTimeout)
	mark := m.Mark()
	m.WaitConsoleFrom(mark, `PROBE boot number 2`, bootTimeout)
	m.WaitConsoleFrom(mark, `shutting down for poweroff`, 2*time.Minute)
	m.WaitExit(shutdownTimeout)
	if c := m.Console()[mark:]; !contains(c, "ros: poweroff now") || !contains(c, "service probe stopped") && !contains(c, "services stopped") {
		t.Fatalf("the poweroff was not clean:\n%s", c)
	}
}
