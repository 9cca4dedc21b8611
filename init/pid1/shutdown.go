package pid1

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rosos/ros/system/mount"
)

func shutdownName(cmd int) string {
	switch cmd {
	case unix.LINUX_REBOOT_CMD_POWER_OFF:
		return "poweroff"
	case unix.LINUX_REBOOT_CMD_HALT:
		return "halt"
	}
	return "reboot"
}

// shutdownNow stops services in reverse order (the manager does that on
// SIGTERM), then containerd, then every other process; syncs, unmounts and
// calls reboot(2). It does not return.
func (in *Init) shutdownNow(cmd int) {
	what := shutdownName(cmd)
	in.log.Printf("shutting down for %s", what)
	if in.manager != nil {
		in.manager.stop(unix.SIGTERM, 90*time.Second)
		in.log.Printf("services stopped")
	}
	if in.ctrd != nil {
		in.ctrd.stop(unix.SIGTERM, 15*time.Second)
		in.log.Printf("system containerd stopped")
	}
	killAll(unix.SIGTERM, 5*time.Second)
	killAll(unix.SIGKILL, 2*time.Second)
	unix.Sync()
	unmountAll(in.log.Printf)
	unix.Sync()
	fmt.Printf("ros: %s now\n", what)
	if err := unix.Reboot(cmd); err != nil {
		fmt.Printf("ros: reboot(2): %v\n", err)
	}
	select {}
}

// killAll signals every process but PID 1 and waits until none is left or
// the grace period ends.
func killAll(sig unix.Signal, grace time.Duration) {
	_ = unix.Kill(-1, sig)
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) && len(userProcesses()) > 0 {
		time.Sleep(100 * time.Millisecond)
	}
}

// userProcesses lists processes other than PID 1 and kernel threads.
func userProcesses() []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == 1 {
			continue
		}
		// Kernel threads have an empty cmdline; so do zombies, which the
		// reaper is about to collect.
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(b) == 0 {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

// unmountAll unmounts every file system it can, deepest first, and makes
// the ones it cannot unmount read-only, so that nothing is left dirty.
func unmountAll(logf func(string, ...any)) {
	ms, err := mount.List()
	if err != nil {
		logf("unmount: %v", err)
		return
	}
	keep := map[string]bool{"/": true, "/proc": true, "/sys": true, "/dev": true}
	targets := make([]string, 0, len(ms))
	for _, m := range ms {
		if !keep[m.Target] {
			targets = append(targets, m.Target)
		}
	}
	for i := len(targets) - 1; i >= 0; i-- {
		t := targets[i]
		if err := unix.Unmount(t, 0); err != nil {
			if err2 := unix.Mount("", t, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err2 != nil && isDisk(ms, t) {
				logf("unmount %s: %v; read-only: %v", t, err, err2)
			}
			_ = unix.Unmount(t, unix.MNT_DETACH)
		}
	}
	_ = unix.Mount("", "/", "", unix.MS_REMOUNT|unix.MS_RDONLY, "")
}

func isDisk(ms []mount.Info, target string) bool {
	for _, m := range ms {
		if m.Target == target {
			return strings.HasPrefix(m.Source, "/dev/")
		}
	}
	return false
}
