//go:build e2e

package e2e

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// defaultServices are the built-in services every node runs.
var defaultServices = []string{"udev", "syslog", "network", "ntp", "acpid", "console", "docker"}

type serviceState struct {
	Name     string `json:"name"`
	State    string `json:"state"`
	Health   string `json:"health"`
	Pid      int    `json:"pid"`
	Restarts int    `json:"restarts"`
}

func serviceStates(t *testing.T, s *SSH) map[string]serviceState {
	t.Helper()
	m, err := readServiceStates(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// readServiceStates asks the service manager for its services' states; it
// fails while the manager is not answering (being restarted).
func readServiceStates(s *SSH) (map[string]serviceState, error) {
	out, err := s.Run("sudo ros service list -o json 2>/dev/null")
	if err != nil {
		return nil, fmt.Errorf("ros service list -o json: %v\n%s", err, out)
	}
	var r struct{ Services []serviceState }
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		return nil, fmt.Errorf("ros service list -o json: %v\n%s", err, out)
	}
	m := map[string]serviceState{}
	for _, st := range r.Services {
		m[st.Name] = st
	}
	return m, nil
}

// allRunning reports whether the manager answers and says every one of
// names is running.
func allRunning(t *testing.T, s *SSH, names ...string) func(string) bool {
	return func(string) bool {
		st, err := readServiceStates(s)
		if err != nil {
			t.Log(err)
			return false
		}
		for _, n := range names {
			if st[n].State != "running" {
				return false
			}
		}
		return true
	}
}

// helloImage builds a one-file image archive (a static Go program) that
// `docker load` reads.
func helloImage(t *testing.T) []byte {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "main.go")
	os.WriteFile(src, []byte(`package main
import ("fmt"; "net"; "os"; "time")
func main() {
	if len(os.Args) > 1 && os.Args[1] == "sleep" { for { time.Sleep(time.Hour) } }
	if len(os.Args) > 2 && os.Args[1] == "serve" {
		l, err := net.Listen("tcp", os.Args[2])
		if err != nil { fmt.Println(err); os.Exit(1) }
		for {
			c, err := l.Accept()
			if err != nil { continue }
			fmt.Fprintln(c, "hello over a published port")
			c.Close()
		}
	}
	fmt.Println("hello from a user container")
}
`), 0o644)
	bin := filepath.Join(dir, "hello")
	cmd := exec.Command("go", "build", "-o", bin, src)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GO111MODULE=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build hello: %v\n%s", err, out)
	}
	b, _ := os.ReadFile(bin)
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	tw.WriteHeader(&tar.Header{Name: "hello", Mode: 0o755, Size: int64(len(b)), Typeflag: tar.TypeReg})
	tw.Write(b)
	tw.Close()
	l, err := tarball.LayerFromReader(bytes.NewReader(layer.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS = "amd64", "linux"
	cf.Config.Entrypoint = []string{"/hello"}
	img, _ = mutate.ConfigFile(img, cf)
	tag, _ := name.NewTag("e2e/hello:1")
	var out bytes.Buffer
	if err := tarball.Write(tag, img, &out); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// One boot, driven over SSH as a user would: the console, the default
// services, the user's Docker kept apart from the OS, logs, restarts, the
// service manager's own restart, enable refusing bad input, and the power
// button.
func TestServicesOverSSH(t *testing.T) {
	v := Version(t)
	key := NewKey(t)
	// A service that crash-loops, ordered before the console: it must not
	// hold the console back.
	// sshd on the DHCP address only: the console starts beside the
	// network service and must wait for the address, not fail to bind it.
	seed := SeedConfig(key, `rancher:
  ssh:
    listen_address: 10.0.2.15
  services:
    crashloop:
      image: rosos/syslog:`+v+`
      command: [sh, -c, "echo crashing; exit 3"]
      restart: always
      labels:
        io.rancher.os.before: console
`)
	m := New(t, Options{UserData: seed, MetaData: "instance-id: e2e\nlocal-hostname: e2e-node\n"})
	start := time.Now()
	m.Boot()
	s := m.SSH("rancher", key, bootTimeout)
	t.Logf("SSH login as rancher %.1fs after QEMU started", time.Since(start).Seconds())
	s.Eventually("docker info --format '{{.ServerVersion}}'", 5*time.Minute, func(out string) bool {
		return strings.HasPrefix(strings.TrimSpace(out), "26.")
	})
	t.Logf("docker info answered %.1fs after QEMU started", time.Since(start).Seconds())

	t.Run("sshd waited for its listen address", func(t *testing.T) {
		if out := s.MustRun("ss -ltnH"); !contains(out, "10.0.2.15:22 ") || contains(out, "0.0.0.0:22 ") {
			t.Errorf("sshd should listen on 10.0.2.15:22 only:\n%s", out)
		}
		if out := s.MustRun("sudo grep -c 'Cannot bind\\|Bind to port' /var/log/system/console.log || true"); strings.TrimSpace(out) != "0" {
			t.Errorf("sshd failed to bind before the address was up (%s times):\n%s", strings.TrimSpace(out), s.MustRun("sudo tail -20 /var/log/system/console.log"))
		}
	})
	t.Run("the build's Debian release, kernel and docker", func(t *testing.T) {
		if want, got := buildSetting(t, "images/kernel/version", "KERNEL_RELEASE"), strings.TrimSpace(s.MustRun("uname -r")); got != want {
			t.Errorf("kernel %q, want %q (images/kernel/version)", got, want)
		}
		// Interfaces keep the kernel's names (udev's 99-default.link).
		if out, err := s.Run("test -d /sys/class/net/eth0 && ls /sys/class/net"); err != nil || contains(out, "enp") {
			t.Errorf("interface names: %v %s", err, out)
		}
		// The console's client and the user's engine come from one Debian
		// source package and must agree.
		v := strings.Fields(s.MustRun("docker version --format '{{.Client.Version}} {{.Server.Version}}'"))
		if len(v) != 2 || v[0] != v[1] {
			t.Errorf("docker client and engine versions differ: %q", v)
		}
		// Both are upstream's source at Debian's version (cmd/docker), built
		// static and not position-independent: ELF type 2 (EXEC, not DYN's
		// 3) and no dynamic loader named. For dockerd, the running one.
		deb := buildSetting(t, "build/debian.env", "DOCKER_DEB_VERSION")
		if want, _, _ := strings.Cut(deb, "+"); len(v) == 2 && v[0] != want {
			t.Errorf("docker %s, want %s (DOCKER_DEB_VERSION %s)", v[0], want, deb)
		}
		for _, exe := range []string{"/usr/bin/docker", "/proc/$(pgrep -x dockerd)/exe"} {
			out, err := s.Run("sudo od -An -tx1 -j16 -N2 " + exe + " && ! sudo grep -q ld-linux-x86-64 " + exe)
			if f := strings.Fields(out); err != nil || len(f) != 2 || f[0] != "02" {
				t.Errorf("%s is not a static executable (ELF type %q, %v)", exe, out, err)
			}
		}
	})

	t.Run("hostname from the seed", func(t *testing.T) {
		if h := strings.TrimSpace(s.MustRun("hostname")); h != "e2e-node" {
			t.Errorf("hostname %q, want e2e-node (local-hostname of the seed)", h)
		}
	})
	t.Run("host keys made by the manager, the home from skel", func(t *testing.T) {
		// The first boot's host keys are made by the service manager before
		// the console starts, not by ssh-keygen in the console, and sshd
		// serves them.
		pub := strings.Fields(s.MustRun("cat /var/lib/rancher/ssh/ssh_host_ed25519_key.pub"))
		if len(pub) != 3 || pub[0] != "ssh-ed25519" || pub[2] != "root@e2e-node" {
			t.Errorf("ssh_host_ed25519_key.pub: %q, want ssh-ed25519 <key> root@e2e-node", pub)
		}
		if out := s.MustRun("sudo grep -c 'console: made SSH host key' /var/log/system/console.log || true"); strings.TrimSpace(out) != "0" {
			t.Errorf("the console made host keys itself (%s)", strings.TrimSpace(out))
		}
		if len(pub) > 1 {
			if out := s.MustRun("ssh-keyscan -t ed25519 10.0.2.15 2>/dev/null"); !strings.Contains(out, pub[1]) {
				t.Errorf("sshd serves another ed25519 host key than the file's:\n%s", out)
			}
		}
		if out := strings.TrimSpace(s.MustRun("stat -c '%U:%G %a' /home/rancher; stat -c %U /home/rancher/.bashrc")); out != "rancher:rancher 750\nrancher" {
			t.Errorf("home and its .bashrc: %q, want rancher:rancher 750 and a .bashrc of rancher's", out)
		}
	})
	t.Run("password login not offered", func(t *testing.T) {
		msg := m.AuthMethods("rancher")
		if strings.Contains(msg, "password") || strings.Contains(msg, "keyboard-interactive") {
			t.Errorf("the server offered a password method: %s", msg)
		}
		t.Logf("login without a key: %s", msg)
	})
	t.Run("default services running", func(t *testing.T) {
		s.Eventually("true", 3*time.Minute, allRunning(t, s, defaultServices...))
		// udev's coldplug ran, and loaded a module for hardware present that
		// nothing else loads (the PC speaker of QEMU's q35 machine).
		s.Eventually("sudo grep -c 'coldplug done' /var/log/system/udev.log", time.Minute, func(out string) bool { return strings.TrimSpace(out) == "1" })
		if out, err := s.Run("test -d /sys/module/pcspkr"); err != nil {
			t.Errorf("udev coldplug did not load pcspkr: %v %s", err, out)
		}
		// docker's healthcheck (ros probe of the engine's /_ping) passes.
		s.Eventually("true", 3*time.Minute, func(string) bool { return serviceStates(t, s)["docker"].Health == "healthy" })
		t.Log("\n" + s.MustRun("sudo ros service list"))
	})
	t.Run("udevd kills nothing of the service's", func(t *testing.T) {
		// systemd-udevd SIGKILLs the other processes of a cgroup named
		// .../udev each time it goes idle; it runs in a cgroup below the
		// service's, so a command run in the service outlives an event
		// udevd handles, and the coldplug's udevadm were not killed.
		out, err := s.Run(`sudo ros service exec udev -- sh -c 'udevadm trigger --action=change --subsystem-match=input && udevadm settle && sleep 5 && echo alive'`)
		if err != nil || !strings.Contains(out, "alive") {
			t.Errorf("a command in the udev service across an event: %v %q, want it alive", err, out)
		}
		if n := strings.TrimSpace(s.MustRun("sudo grep -c '^Killed' /var/log/system/udev.log || true")); n != "0" {
			t.Errorf("udev.log reports %s processes killed:\n%s", n, s.MustRun("sudo cat /var/log/system/udev.log"))
		}
		// udevd and its workers (named "(udev-worker)") alone are in it.
		out = s.MustRun("for p in $(cat /sys/fs/cgroup/system/udev/udev/cgroup.procs); do cat /proc/$p/comm; done")
		if !strings.Contains(out, "systemd-udevd") || strings.Count(out, "\n") != strings.Count(out, "systemd-udevd\n")+strings.Count(out, "(udev-worker)\n") {
			t.Errorf("the udev service's udev cgroup holds %q, want systemd-udevd and its workers alone", out)
		}
	})
	t.Run("the services' runtime is crun", func(t *testing.T) {
		// crun keeps a container's state in "status", runc in "state.json",
		// under the root the shim gives either.
		for _, n := range []string{"console", "docker", "syslog"} {
			out, err := s.Run("sudo ls /run/containerd/runc/system/" + n)
			if err != nil || !strings.Contains(out, "status") || strings.Contains(out, "state.json") {
				t.Errorf("%s's runtime state: %v %q, want crun's (status, no state.json)", n, err, out)
			}
		}
		// A process run in a service goes through the runtime too.
		if out, err := s.Run("sudo ros service exec syslog -- sh -c 'echo in-$((6*7))'"); err != nil || strings.TrimSpace(out) != "in-42" {
			t.Errorf("ros service exec syslog: %v %q, want in-42", err, out)
		}
	})
	t.Run("the console's CPU weight", func(t *testing.T) {
		// cpu_shares 4096 for the console in the built-in config: runc's
		// weight for it is 303, against 100 for a service without
		// cpu_shares; udev's 128 (its coldplug yields) is 21 (runc 1.4's
		// conversion, which maps 1024 to 100).
		w := map[string]string{}
		for _, n := range []string{"console", "syslog", "udev"} {
			w[n] = strings.TrimSpace(s.MustRun("cat /sys/fs/cgroup/system/" + n + "/cpu.weight"))
		}
		if w["console"] != "303" || w["syslog"] != "100" || w["udev"] != "21" {
			t.Errorf("cpu.weight: console %s, syslog %s, udev %s; want 303, 100 and 21", w["console"], w["syslog"], w["udev"])
		}
	})
	t.Run("docker-start: containerd first, dockerd after the network, both supervised", func(t *testing.T) {
		s.MustRun("test -s /run/ros-network/configured")
		const ctrd = "'^containerd --config /etc/docker/containerd.toml'"
		if out := s.MustRun("ps -o args= -C dockerd"); !strings.Contains(out, "--containerd=/var/run/docker/containerd/containerd.sock") {
			t.Errorf("dockerd is not connected to docker-start's containerd: %q", out)
		}
		// Docker's containerd is the OS's binary (go.mod's pin), not
		// Debian's: the docker image has none.
		want := strings.TrimPrefix(goModVersion(t, "github.com/containerd/containerd/v2"), "v")
		if got := s.MustRun(`docker version --format '{{range .Server.Components}}{{if eq .Name "containerd"}}{{.Version}}{{end}}{{end}}'`); !strings.HasPrefix(strings.TrimSpace(got), want) {
			t.Errorf("docker's containerd is %q, want the OS's containerd %s", strings.TrimSpace(got), want)
		}
		log := s.MustRun("sudo cat /var/log/system/docker.log")
		for _, bad := range []string{"starting managed containerd", "docker-start:"} {
			if strings.Contains(log, bad) {
				t.Errorf("docker.log has %q:\n%s", bad, log)
			}
		}
		// The API socket is bound by ros-init listen (docker-start) and passed
		// to dockerd: socket activation, as Debian's docker.socket.
		if out := strings.TrimSpace(s.MustRun("stat -c '%U:%G %a %F' /var/run/docker.sock")); out != "root:docker 660 socket" {
			t.Errorf("/var/run/docker.sock: %q, want root:docker 660 socket", out)
		}
		if out := s.MustRun("ps -o args= -C dockerd"); !strings.Contains(out, "--host=fd://") {
			t.Errorf("dockerd does not take its socket from docker-start: %q", out)
		}
		// Docker's containerd dying ends the service, which is restarted
		// whole: the engine answers again, on a new containerd. A client
		// that connects as soon as the new run has bound the socket waits
		// for the engine (it is not refused): it began before dockerd's
		// "API listen" and got an answer.
		old := strings.TrimSpace(s.MustRun("pgrep -f " + ctrd))
		out := s.MustRun("inode=$(stat -c %i /var/run/docker.sock); sudo pkill -KILL -f " + ctrd + `
for i in $(seq 1200); do n=$(stat -c %i /var/run/docker.sock 2>/dev/null); [ -n "$n" ] && [ "$n" != "$inode" ] && break; sleep 0.1; done
t0=$(date +%s.%N); v=$(docker info --format '{{.ServerVersion}}' 2>&1); echo "$t0 $v"
sudo grep 'API listen' /var/log/system/docker.log | tail -1 | sed 's/^.*time="\([^"]*\)".*$/\1/' | xargs -r -I{} date -d {} +%s.%N`)
		if f := strings.Fields(out); len(f) != 3 || !strings.HasPrefix(f[1], "26.") {
			t.Errorf("docker info while the engine restarts: %q, want its start time, the engine's version and its API's time", out)
		} else if began, api := parseFloat(t, f[0]), parseFloat(t, f[2]); began >= api {
			t.Errorf("docker info began at %.2f, after the engine's API listened at %.2f: nothing shows it waited", began, api)
		} else {
			t.Logf("docker info waited %.1fs for the restarting engine", api-began)
		}
		s.Eventually("docker info --format '{{.ServerVersion}}' && pgrep -f "+ctrd, 3*time.Minute, func(out string) bool {
			f := strings.Fields(out)
			return len(f) == 2 && f[1] != old
		})
		if log := s.MustRun("sudo cat /var/log/system/docker.log"); !strings.Contains(log, "docker-start: containerd exited") {
			t.Errorf("docker.log does not say containerd exited:\n%s", log)
		}
		s.Eventually("true", 3*time.Minute, func(string) bool { return serviceStates(t, s)["docker"].Health == "healthy" })
	})
	t.Run("user docker load and run", func(t *testing.T) {
		if out, err := s.RunInput("docker load", bytes.NewReader(helloImage(t))); err != nil {
			t.Fatalf("docker load: %v\n%s", err, out)
		}
		out := s.MustRun("docker run --rm e2e/hello:1")
		if !strings.Contains(out, "hello from a user container") {
			t.Fatalf("docker run: %s", out)
		}
		s.MustRun("docker run -d --name sleeper e2e/hello:1 sleep")
		// The engine runs them with the OS's runc, mounted into the service.
		if out := s.MustRun("sudo system-docker exec docker sh -c 'command -v runc && runc --version'"); !strings.Contains(out, "/usr/local/bin/runc") || !strings.Contains(out, "libseccomp") {
			t.Errorf("the user's engine's runc: %q, want the OS's at /usr/local/bin/runc, with seccomp", out)
		}
		if out := s.MustRun("docker info --format '{{.RuncCommit.ID}}'"); strings.TrimSpace(out) == "" {
			t.Errorf("docker info shows no runc commit: the engine could not read the runc's version")
		}
	})
	t.Run("a published port reaches the user's container", func(t *testing.T) {
		// The engine's DNAT rule (written by its iptables, nft backend)
		// takes a connection to the node's own address to the container.
		// docker-proxy listens on the port too, so the rule's packet
		// counter is what shows the connection went through the rule.
		s.MustRun("docker run -d --name web -p 8080:8080 e2e/hello:1 serve :8080")
		if out := s.MustRun("sudo system-docker exec docker iptables -t nat -S DOCKER"); !strings.Contains(out, "--dport 8080 -j DNAT") {
			t.Fatalf("the engine's nat table has no DNAT rule for 8080:\n%s", out)
		}
		dial := `ip=$(ip -4 -o addr show dev eth0 | awk '{split($4, a, "/"); print a[1]}'); timeout 10 bash -c "cat < /dev/tcp/$ip/8080"`
		s.Eventually(dial, time.Minute, func(out string) bool {
			return strings.Contains(out, "hello over a published port")
		})
		out := s.MustRun("sudo system-docker exec docker iptables -t nat -L DOCKER -n -v -x | awk '/dpt:8080/ {print $1}'")
		if n, err := strconv.Atoi(strings.TrimSpace(out)); err != nil || n == 0 {
			t.Errorf("the DNAT rule for 8080 counted %q packets: the connection did not go through it", out)
		}
	})
	t.Run("wiping the user's docker leaves the OS", func(t *testing.T) {
		before := serviceStates(t, s)
		s.MustRun("docker rm -f $(docker ps -qa) && docker system prune -af")
		if out := s.MustRun("docker ps -qa"); strings.TrimSpace(out) != "" {
			t.Fatalf("containers left: %s", out)
		}
		after := serviceStates(t, s)
		for _, n := range defaultServices {
			if after[n].State != "running" || after[n].Pid != before[n].Pid {
				t.Errorf("%s: %+v after the wipe, was %+v", n, after[n], before[n])
			}
		}
		s.MustRun("true") // the node still answers
	})
	t.Run("logger reaches /var/log/messages", func(t *testing.T) {
		token := "e2e-logger-" + time.Now().Format("150405.000")
		s.MustRun("logger -t e2e " + token)
		s.Eventually("sudo grep -c "+token+" /var/log/messages", time.Minute, func(out string) bool {
			return strings.TrimSpace(out) == "1"
		})
	})
	t.Run("crash loop backs off and holds nothing back", func(t *testing.T) {
		s.Eventually("true", 2*time.Minute, func(string) bool { return serviceStates(t, s)["crashloop"].Restarts >= 3 })
		st := serviceStates(t, s)["crashloop"]
		// 1s, 2s, 4s, 8s ... between restarts: far fewer restarts than seconds.
		time.Sleep(20 * time.Second)
		later := serviceStates(t, s)["crashloop"]
		if later.Restarts-st.Restarts > 4 {
			t.Errorf("crashloop restarted %d times in 20s: no back-off", later.Restarts-st.Restarts)
		}
		if out := s.MustRun("sudo ros service logs --tail 2 crashloop"); !strings.Contains(out, "crashing") {
			t.Errorf("ros service logs crashloop: %q", out)
		}
	})
	t.Run("killed service is restarted", func(t *testing.T) {
		before := serviceStates(t, s)["ntp"]
		s.MustRun(fmt.Sprintf("sudo kill -9 %d", before.Pid))
		s.Eventually("true", 2*time.Minute, func(string) bool {
			st := serviceStates(t, s)["ntp"]
			return st.State == "running" && st.Restarts == before.Restarts+1 && st.Pid != before.Pid
		})
		t.Log("\n" + s.MustRun("sudo ros service ps"))
	})
	t.Run("killed service manager comes back and adopts", func(t *testing.T) {
		before := serviceStates(t, s)
		s.MustRun("sudo pkill -9 -f '^/usr/bin/ros service-manager'")
		time.Sleep(3 * time.Second)
		// The manager answers while it is still adopting; wait until it
		// reports every default service running, then compare the pids.
		s.Eventually("sudo ros service list", 2*time.Minute, allRunning(t, s, defaultServices...))
		after := serviceStates(t, s)
		for _, n := range defaultServices {
			if after[n].State != "running" || after[n].Pid != before[n].Pid {
				t.Errorf("%s: %+v after the manager's restart, was %+v", n, after[n], before[n])
			}
		}
		if n := strings.TrimSpace(s.MustRun("pgrep -xc rsyslogd")); n != "1" {
			t.Errorf("%s rsyslogd processes, want 1", n)
		}
	})
	t.Run("enable refuses bad compose files", func(t *testing.T) {
		cfgBefore, _ := s.Run("sudo cat /var/lib/rancher/conf/cloud-config.yml")
		s.MustRun("printf 'services:\\n  bad:\\n    image: rosos/syslog:" + v + "\\n    build: .\\n' > /tmp/bad.yml")
		s.MustRun("printf 'services:\\n  noimage:\\n    image: example.invalid/nothing:1\\n' > /tmp/noimage.yml")
		out, err := s.Run("sudo ros service enable /tmp/bad.yml")
		if err == nil || !strings.Contains(out, "build") || !strings.Contains(out, "bad") {
			t.Errorf("enable of a file with an unsupported field: err %v, output %q", err, out)
		}
		t.Logf("unsupported field: %s", out)
		out, err = s.Run("sudo ros service enable /tmp/noimage.yml")
		if err == nil || !strings.Contains(out, "example.invalid/nothing:1") {
			t.Errorf("enable of a file with a missing image: err %v, output %q", err, out)
		}
		t.Logf("missing image: %s", out)
		cfgAfter, _ := s.Run("sudo cat /var/lib/rancher/conf/cloud-config.yml")
		if cfgAfter != cfgBefore {
			t.Errorf("the config changed: %q -> %q", cfgBefore, cfgAfter)
		}
		st := serviceStates(t, s)
		for _, n := range []string{"bad", "noimage"} {
			if _, ok := st[n]; ok {
				t.Errorf("service %s is known after a refused enable", n)
			}
		}
	})
	t.Run("enable and disable a good file", func(t *testing.T) {
		s.MustRun("printf 'services:\\n  hello:\\n    image: rosos/syslog:" + v + "\\n    command: [sleep, \\\"3600\\\"]\\n    restart: always\\n' > /tmp/hello.yml")
		s.MustRun("sudo ros service enable /tmp/hello.yml")
		s.Eventually("true", time.Minute, allRunning(t, s, "hello"))
		s.MustRun("sudo ros service disable hello")
		if _, ok := serviceStates(t, s)["hello"]; ok {
			t.Error("hello is still known after disable")
		}
	})
	t.Run("system-docker alias", func(t *testing.T) {
		out := s.MustRun("sudo system-docker ps")
		if !strings.Contains(out, "syslog") {
			t.Errorf("system-docker ps: %s", out)
		}
		out = s.MustRun("sudo system-docker exec syslog cat /etc/os-release")
		if suite := buildSetting(t, "build/debian.env", "DEBIAN_SUITE"); !strings.Contains(out, suite) {
			t.Errorf("system-docker exec syslog: %s", out)
		}
	})
	t.Run("boot analyze", func(t *testing.T) {
		out := s.MustRun("sudo ros boot analyze")
		for _, n := range append([]string{"stage1: ", "init: "}, defaultServices...) {
			if !strings.HasSuffix(n, " ") {
				n = "service " + n
			}
			if !strings.Contains(out, n) {
				t.Errorf("ros boot analyze lacks service %s:\n%s", n, out)
			}
		}
		t.Log("\n" + out)
	})
	t.Run("memory", func(t *testing.T) {
		t.Log("\n" + s.MustRun("free -m; sudo grep VmRSS /proc/1/status"))
		// Huge pages on request, and the kernel's base reserve rather
		// than khugepaged's raise (4 * sqrt(KiB of memory)).
		out := s.MustRun("cat /sys/kernel/mm/transparent_hugepage/enabled /proc/sys/vm/min_free_kbytes; grep MemTotal /proc/meminfo")
		var minFree, total float64
		if _, err := fmt.Sscanf(strings.ReplaceAll(out, "MemTotal:", ""), "always [madvise] never\n%f\n%f kB", &minFree, &total); err != nil {
			t.Errorf("THP policy, min_free_kbytes: %q (%v), want madvise and the base reserve", out, err)
		} else if want := math.Floor(math.Sqrt(total * 16)); minFree != want {
			t.Errorf("min_free_kbytes %v, want %v for MemTotal %v kB", minFree, want, total)
		}
		// Every service is in one runc shim of system containerd (the
		// shim's -id is the first service it started, not the group).
		shims := s.MustRun("ps -eo args | grep '[c]ontainerd-shim-runc-v2 .*-address /run/system-containerd/' || true")
		if n := strings.Count(strings.TrimSpace(shims), "\n") + 1; strings.TrimSpace(shims) == "" || n != 1 {
			t.Errorf("system containerd's shims, want one for all %d services:\n%s", len(defaultServices), shims)
		}
	})
	t.Run("power button", func(t *testing.T) {
		m.PowerButton()
		m.WaitExit(shutdownTimeout)
	})
}
