// Package pid1 is `ros init`, the process the kernel runs as PID 1 after
// stage 1 switched to the real root. It mounts what is left, starts system
// containerd and the service manager as its children, reaps every orphan,
// and shuts the machine down cleanly. It parses no user input: the service
// manager, a child it restarts, does that.
package pid1

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rosos/ros/init/bootlog"
	"github.com/rosos/ros/internal/paths"
	"github.com/rosos/ros/system/kmod"
	"github.com/rosos/ros/system/mount"
	"github.com/rosos/ros/system/osimage"
)

// Init is PID 1's state.
type Init struct {
	log     *bootlog.Log
	reaper  *Reaper
	slot    string
	version string
	// shutdown requests: the reboot(2) command to end with.
	shutdown chan int
	booted   bool
	// markedGood is set once the boot assessment passed and the slot was
	// marked good.
	markedGood bool
	ctrd       *child
	manager    *child
}

// Run is PID 1. It never returns while the machine is up.
func Run() error {
	in := &Init{
		log:      bootlog.New(os.Stdout, "init"),
		shutdown: make(chan int, 4),
	}
	// Ctrl-Alt-Del sends SIGINT to PID 1 instead of rebooting at once.
	_ = unix.Reboot(unix.LINUX_REBOOT_CMD_CAD_OFF)
	in.reaper = NewReaper()
	in.handleSignals()

	in.log.Stage("mount cgroup2, devpts, shm, tmp")
	if err := mountRest(); err != nil {
		return in.fail(err)
	}
	in.slot, in.version = bootInfo()
	if set, err := hugePagesOnRequest("/proc/cmdline", "/sys/kernel/mm/transparent_hugepage/enabled"); err != nil {
		in.log.Printf("warning: transparent huge pages: %v", err)
	} else if set {
		in.log.Printf("transparent huge pages: madvise")
		if from, to, err := baseReserve("/proc/meminfo", "/proc/sys/vm/min_free_kbytes"); err != nil {
			in.log.Printf("warning: min_free_kbytes: %v", err)
		} else if from != to {
			in.log.Printf("min_free_kbytes %d -> %d (the kernel's reserve without khugepaged's raise)", from, to)
		}
	}

	// System containerd needs none of the boot's modules (stage 1 loaded
	// overlay), so they load while it starts; the services need them
	// (virtio_net, bridge, netfilter), so the manager waits for them. The
	// manager does not wait for containerd: it reads the config and the
	// service definitions while containerd starts (both are seconds of
	// CPU under emulation, and the two vCPUs share them), and waits for
	// the socket itself before its first container.
	in.log.Stage("start system containerd; load kernel modules beside it")
	modsDone := make(chan struct{})
	go func() {
		began := time.Now()
		if n, err := loadModules(); err != nil {
			in.log.Printf("warning: %v", err)
		} else {
			in.log.Printf("loaded %d modules in %.2fs", n, time.Since(began).Seconds())
		}
		close(modsDone)
		in.watchPowerButton() // the button's driver is one of them
	}()
	in.ctrd = in.startContainerd()
	<-modsDone

	in.log.Stage("start the service manager")
	ready := make(chan Ready, 4)
	in.manager = in.superviseManager(ready)
	if err := waitSocket(paths.ContainerdSock, 60*time.Second); err != nil {
		return in.fail(fmt.Errorf("system containerd did not come up: %w (see /var/log/system-containerd.log)", err))
	}
	in.log.Printf("system containerd is up on %s", paths.ContainerdSock)
	if err := in.log.Save(paths.Timeline); err != nil {
		in.log.Printf("warning: boot timeline: %v", err)
	}

	for {
		select {
		case r := <-ready:
			switch r.Event {
			case "ready":
				if in.booted {
					continue
				}
				in.booted = true
				in.log.Mark("init", "boot complete", "")
				_ = in.log.Save(paths.Timeline)
				fmt.Printf("ros: boot complete in %.2fs (slot %s, version %s, %d services)\n",
					bootlog.Since().Seconds(), in.slot, in.version, r.Services)
			case "healthy":
				// The boot assessment: only a boot whose critical services
				// are all healthy keeps its slot.
				if in.markedGood {
					continue
				}
				in.markedGood = true
				in.log.Mark("init", "marked good", "")
				_ = in.log.Save(paths.Timeline)
				if err := markGood(in.slot); err != nil {
					in.log.Printf("warning: could not mark slot %s good: %v", in.slot, err)
				} else {
					in.log.Printf("slot %s marked good: every critical service is healthy", in.slot)
				}
			case "unhealthy":
				if in.markedGood {
					continue
				}
				if onTrial(in.slot) {
					in.log.Printf("slot %s is on trial and its critical services are not healthy (%v): rebooting, GRUB falls back when its tries are spent", in.slot, r.Failing)
					in.shutdownNow(unix.LINUX_REBOOT_CMD_RESTART)
				}
				in.log.Printf("warning: critical services not healthy: %v (slot %s stays: it booted well before)", r.Failing, in.slot)
			}
		case cmd := <-in.shutdown:
			in.shutdownNow(cmd)
		}
	}
}

// hugePagesOnRequest sets transparent huge pages to madvise: only memory a
// program asks for with madvise(MADV_HUGEPAGE) gets 2 MiB pages. Debian's
// kernel backs every large anonymous mapping with them ("always"), which
// rounds each Go daemon's heap up to 2 MiB pages it never touches: measured
// on the booted image, 68 of the 111 MiB of anonymous memory were huge
// pages. A transparent_hugepage= on the kernel command line wins.
func hugePagesOnRequest(cmdlinePath, thpEnabled string) (bool, error) {
	cmdline, err := os.ReadFile(cmdlinePath)
	if err != nil {
		return false, err
	}
	for _, f := range strings.Fields(string(cmdline)) {
		if strings.HasPrefix(f, "transparent_hugepage=") {
			return false, nil
		}
	}
	if _, err := os.Stat(thpEnabled); errors.Is(err, os.ErrNotExist) {
		return false, nil // a kernel without transparent huge pages
	}
	if err := os.WriteFile(thpEnabled, []byte("madvise"), 0); err != nil {
		return false, fmt.Errorf("set %s: %w", thpEnabled, err)
	}
	return true, nil
}

// baseReserve puts vm.min_free_kbytes back to the value the kernel gives a
// machine of this size without transparent huge pages (4 * sqrt(memory in
// KiB), as mm/page_alloc.c computes it). khugepaged raises it at boot to
// keep 2 MiB blocks free for huge page allocations: on a 2 GiB node from
// about 5.7 MiB to 44 MiB, and the watermarks built on it hold back about
// 100 MiB more from MemAvailable. With huge pages on request only (madvise)
// and no system service asking for them, that raise buys nothing; a program
// that asks for huge pages still gets them while 2 MiB blocks are free, and
// a 4 KiB page otherwise. It only lowers: a reserve already at or below the
// base is left. rancher.sysctl vm.min_free_kbytes, applied later by the
// service manager, sets another value.
func baseReserve(meminfo, minFree string) (from, to int, err error) {
	b, err := os.ReadFile(minFree)
	if err != nil {
		return 0, 0, err
	}
	from, err = strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, 0, fmt.Errorf("%s: %w", minFree, err)
	}
	total, err := memTotalKiB(meminfo)
	if err != nil {
		return from, from, err
	}
	to = min(max(int(math.Sqrt(float64(total*16))), 128), 262144)
	if to >= from {
		return from, from, nil
	}
	if err := os.WriteFile(minFree, []byte(strconv.Itoa(to)), 0); err != nil {
		return from, from, fmt.Errorf("set %s: %w", minFree, err)
	}
	return from, to, nil
}

// memTotalKiB reads MemTotal from a /proc/meminfo document.
func memTotalKiB(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "MemTotal:"); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				break
			}
			n, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%s: MemTotal: %w", path, err)
			}
			return n, nil
		}
	}
	return 0, fmt.Errorf("%s: no MemTotal line", path)
}

// fail reports a failure of PID 1's own steps and reboots after a pause.
func (in *Init) fail(err error) error {
	fmt.Printf("ros: init failed: %v\n", err)
	fmt.Printf("ros: rebooting in 10 seconds\n")
	time.Sleep(10 * time.Second)
	in.shutdownNow(unix.LINUX_REBOOT_CMD_RESTART)
	return err
}

func (in *Init) handleSignals() {
	ch := make(chan os.Signal, 8)
	signal.Notify(ch, unix.SIGTERM, unix.SIGINT, unix.SIGUSR1, unix.SIGUSR2, unix.SIGPWR)
	go func() {
		for s := range ch {
			switch s {
			case unix.SIGTERM, unix.SIGINT:
				in.shutdown <- unix.LINUX_REBOOT_CMD_RESTART
			case unix.SIGUSR2, unix.SIGPWR:
				in.shutdown <- unix.LINUX_REBOOT_CMD_POWER_OFF
			case unix.SIGUSR1:
				in.shutdown <- unix.LINUX_REBOOT_CMD_HALT
			}
		}
	}()
}

func mountRest() error {
	for _, m := range []struct {
		src, dst, typ string
		flags         uintptr
		data          string
	}{
		{"cgroup2", "/sys/fs/cgroup", "cgroup2", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, "nsdelegate"},
		{"devpts", "/dev/pts", "devpts", unix.MS_NOSUID | unix.MS_NOEXEC, "gid=5,mode=620,ptmxmode=666"},
		{"tmpfs", "/dev/shm", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777"},
		{"tmpfs", "/tmp", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777"},
		{"mqueue", "/dev/mqueue", "mqueue", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
	} {
		if mount.IsMounted(m.dst) {
			continue
		}
		if err := mount.Mount(m.src, m.dst, m.typ, m.flags, m.data); err != nil {
			return err
		}
	}
	for _, d := range []string{"/run/ros", paths.SystemLogDir, paths.ContainerdState, paths.ConfDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	// /dev/ptmx must point at the devpts instance for consoles in containers.
	if _, err := os.Lstat("/dev/ptmx"); err != nil {
		_ = os.Symlink("pts/ptmx", "/dev/ptmx")
	}
	return nil
}

// bootInfo returns the slot GRUB booted and the OS version.
func bootInfo() (slot, version string) {
	slot, version = "?", "unknown"
	if b, err := os.ReadFile("/proc/cmdline"); err == nil {
		for _, f := range strings.Fields(string(b)) {
			if v, ok := strings.CutPrefix(f, "ros.slot="); ok {
				slot = v
			}
		}
	}
	if v := osimage.ReleaseVersion("/"); v != "" {
		version = v
	}
	return slot, version
}

func loadModules() (int, error) {
	idx, err := kmod.OpenRunning()
	if err != nil {
		return 0, err
	}
	names, err := kmod.ReadList(paths.ModuleList)
	if err != nil {
		return 0, fmt.Errorf("modules: %w", err)
	}
	loaded, err := idx.Load(names...)
	return len(loaded), err
}

func waitSocket(path string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		err = unix.Connect(fd, &unix.SockaddrUnix{Name: path})
		_ = unix.Close(fd)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %w after %s", path, err, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Ready is what the service manager tells PID 1: "ready" when every
// service started, then "healthy" or "unhealthy" (the boot assessment).
type Ready struct {
	Event    string   `json:"event"`
	Services int      `json:"services"`
	Failing  []string `json:"failing,omitempty"`
}

// readReady reads the manager's messages on its status pipe.
func readReady(f *os.File, ready chan<- Ready) {
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		var r Ready
		if json.Unmarshal(s.Bytes(), &r) == nil && r.Event != "" {
			select {
			case ready <- r:
			default:
			}
		}
	}
}

// managerCommand is the service manager's command line: the ros command,
// which PID 1 does not link.
func managerCommand() *exec.Cmd {
	return exec.Command("/usr/bin/ros", "service-manager")
}
