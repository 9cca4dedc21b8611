//go:build e2e

// Package e2e boots the real disk image in QEMU and drives it as a user
// would. The harness: New makes a machine on a copy-on-write overlay of
// ROS_IMAGE, Boot starts it, WaitConsole waits for a line on the serial
// console, PowerButton / CtrlAltDel / Kill act on it, and Boot again starts
// the same disk after it stopped.
package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// Options shape a machine.
type Options struct {
	Image string // the disk image to boot (default: ROS_IMAGE)
	// DiskGiB, when set, makes the boot disk this big (the image at its
	// start), as a cloud volume bigger than the image is.
	DiskGiB  int
	UserData string // a #cloud-config document, served on a NoCloud seed disk
	MetaData string
	MemoryMB int
	// ConfigDrive, when set, is an OpenStack ConfigDrive (label config-2):
	// openstack/latest/user_data and meta_data.json.
	ConfigDrive *ConfigDrive
	// NICs adds this many network interfaces (eth1, eth2 ...) on isolated
	// user-mode networks, for static addresses, VLANs, bridges and bonds.
	NICs int
	// CDROM, when set, is an ISO in the machine's CD-ROM drive (the live
	// ISO); EjectCD takes it out.
	CDROM string
	// Disks are more raw disks, read-only, after the seeds (an OS image
	// archive for ros os upgrade --file /dev/vdX).
	Disks []string
	// OEM, when set, is oem-config.yml on an OEM partition (RANCHER_OEM).
	OEM string
	// Metadata, when set, is served at http://169.254.169.254 (path ->
	// content; 404 otherwise), as a cloud's metadata service is.
	Metadata map[string]string
	// Hub, when set, connects a NIC (after the NICs) to this hub: the
	// link of the machines of a multi-node test. HubMAC is its address
	// (each machine needs its own).
	Hub    *Hub
	HubMAC string
}

// ConfigDrive is the content of a ConfigDrive seed.
type ConfigDrive struct {
	UserData string
	MetaJSON string
}

// Machine is one QEMU guest.
type Machine struct {
	t    *testing.T
	dir  string
	disk string
	seed string
	opts Options
	// configDrive is the ConfigDrive ISO; metadata the metadata service's
	// files (JSON), served by this test binary per connection.
	configDrive, metadata, oem string
	SSHPort                    int

	mu       sync.Mutex
	cmd      *exec.Cmd
	exited   chan struct{}
	boots    int
	bootFrom int64 // serial log offset where the current boot began
	logPath  string
}

// Image is the disk image under test.
func Image(t *testing.T) string { return builtFile(t, "ROS_IMAGE", "make image") }

// builtFile is the build output the environment variable env names (make
// test sets it); the test fails saying how to build it when it is missing.
func builtFile(t *testing.T, env, target string) string {
	t.Helper()
	p := os.Getenv(env)
	if p == "" {
		t.Fatalf("%s is not set: run the end-to-end tests with `make test`", env)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s: %v (build it with `%s`)", env, err, target)
	}
	return p
}

// Version is the OS version the image was built with (for image names).
func Version(t *testing.T) string {
	v := os.Getenv("ROS_VERSION")
	if v == "" {
		t.Fatal("ROS_VERSION is not set: run the end-to-end tests with `make test`")
	}
	return v
}

// New prepares a machine; it is killed when the test ends.
func New(t *testing.T, opts Options) *Machine {
	t.Helper()
	dir := t.TempDir()
	m := &Machine{t: t, dir: dir, opts: opts, logPath: filepath.Join(dir, "serial.log")}
	m.disk = filepath.Join(dir, "disk.qcow2")
	img := opts.Image
	if img == "" {
		img = Image(t)
	}
	args := []string{"create", "-q", "-f", "qcow2", "-F", "raw", "-b", img, m.disk}
	if opts.DiskGiB > 0 {
		args = append(args, fmt.Sprintf("%dG", opts.DiskGiB))
	}
	run(t, "qemu-img", args...)
	run(t, "cp", "/usr/share/OVMF/OVMF_VARS_4M.fd", filepath.Join(dir, "vars.fd"))
	if opts.UserData != "" {
		m.SetUserData(opts.UserData)
	}
	if cd := opts.ConfigDrive; cd != nil {
		files := map[string]string{"openstack/latest/meta_data.json": cd.MetaJSON}
		if cd.UserData != "" {
			files["openstack/latest/user_data"] = cd.UserData
		}
		m.configDrive = m.iso("config-2", files)
	}
	if opts.OEM != "" {
		m.oem = m.iso("RANCHER_OEM", map[string]string{"oem-config.yml": opts.OEM})
	}
	if opts.Metadata != nil {
		b, _ := json.Marshal(opts.Metadata)
		m.metadata = filepath.Join(dir, "metadata.json")
		os.WriteFile(m.metadata, b, 0o644)
	}
	t.Cleanup(func() {
		m.Kill()
		if t.Failed() {
			b, _ := os.ReadFile(m.logPath)
			if len(b) > 12000 {
				b = b[len(b)-12000:]
			}
			t.Logf("serial console (end):\n%s", b)
		}
	})
	return m
}

// EjectCD takes the CD-ROM and the NoCloud seed out, for the next Boot.
func (m *Machine) EjectCD() {
	m.opts.CDROM = ""
	m.seed = ""
}

// SetUserData writes the NoCloud seed's user data anew, for the next Boot.
func (m *Machine) SetUserData(ud string) {
	m.t.Helper()
	md := m.opts.MetaData
	if md == "" {
		md = "instance-id: " + m.t.Name() + "\n"
	}
	m.seed = m.iso("cidata", map[string]string{"user-data": ud, "meta-data": md})
}

// iso makes an ISO 9660 seed with the label and files.
func (m *Machine) iso(label string, files map[string]string) string {
	m.t.Helper()
	dir := filepath.Join(m.dir, label)
	os.RemoveAll(dir)
	for name, content := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			m.t.Fatal(err)
		}
	}
	out := filepath.Join(m.dir, label+".iso")
	os.Remove(out)
	run(m.t, "xorriso", "-as", "mkisofs", "-quiet", "-V", label, "-J", "-r", "-o", out, dir)
	return out
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Boot starts QEMU on the machine's disk (again, after a stop).
func (m *Machine) Boot() {
	m.t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil {
		m.t.Fatal("Boot: the machine is already running")
	}
	m.SSHPort = freePort(m.t)
	mem := m.opts.MemoryMB
	if mem == 0 {
		mem = 2048
	}
	if fi, err := os.Stat(m.logPath); err == nil {
		m.bootFrom = fi.Size()
	}
	args := []string{
		"-machine", "q35,accel=tcg", "-m", fmt.Sprint(mem), "-smp", "2",
		"-drive", "if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd",
		"-drive", "if=pflash,format=raw,file=" + filepath.Join(m.dir, "vars.fd"),
		"-drive", "if=virtio,format=qcow2,file=" + m.disk,
		"-netdev", fmt.Sprintf("user,id=n0,hostfwd=tcp:127.0.0.1:%d-:22%s", m.SSHPort, m.guestfwd()),
		"-device", "virtio-net-pci,netdev=n0",
		"-device", "virtio-rng-pci",
		"-display", "none", "-monitor", "none",
		"-chardev", "file,id=ser0,path=" + m.logPath + ",append=on",
		"-serial", "chardev:ser0",
		"-qmp", "unix:" + filepath.Join(m.dir, "qmp.sock") + ",server=on,wait=off",
	}
	for i := 1; i <= m.opts.NICs; i++ {
		args = append(args, "-netdev", fmt.Sprintf("user,id=n%d,restrict=on,net=10.0.%d.0/24", i, 100+i),
			"-device", fmt.Sprintf("virtio-net-pci,netdev=n%d", i))
	}
	if m.opts.Hub != nil {
		args = append(args, m.opts.Hub.netdev("hub", m.opts.HubMAC)...)
	}
	if m.opts.CDROM != "" {
		args = append(args, "-cdrom", m.opts.CDROM)
	}
	for _, iso := range append([]string{m.seed, m.configDrive, m.oem}, m.opts.Disks...) {
		if iso != "" {
			args = append(args, "-drive", "if=virtio,format=raw,readonly=on,file="+iso)
		}
	}
	cmd := exec.Command("qemu-system-x86_64", args...)
	out, _ := os.Create(filepath.Join(m.dir, "qemu.log"))
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		m.t.Fatalf("start qemu: %v", err)
	}
	m.cmd = cmd
	m.boots++
	exited := make(chan struct{})
	m.exited = exited
	go func() {
		cmd.Wait()
		out.Close()
		close(exited)
	}()
}

// Console returns what the serial console printed since the last Boot,
// with the carriage returns of the serial line taken out.
func (m *Machine) Console() string {
	b, _ := os.ReadFile(m.logPath)
	if int64(len(b)) < m.bootFrom {
		return ""
	}
	return strings.ReplaceAll(string(b[m.bootFrom:]), "\r", "")
}

// WaitConsole waits until the console since the last Boot (from offset
// `after`, see Mark) matches pattern, and returns the first submatch (or the
// whole match). It fails the test when the deadline passes or QEMU exits.
func (m *Machine) WaitConsole(pattern string, timeout time.Duration) string {
	m.t.Helper()
	return m.WaitConsoleFrom(0, pattern, timeout)
}

// Mark is the console position now, for WaitConsoleFrom.
func (m *Machine) Mark() int { return len(m.Console()) }

// WaitConsoleFrom is WaitConsole looking only after mark.
func (m *Machine) WaitConsoleFrom(mark int, pattern string, timeout time.Duration) string {
	m.t.Helper()
	re := regexp.MustCompile(pattern)
	deadline := time.Now().Add(timeout)
	for {
		c := m.Console()
		if mark <= len(c) {
			if sm := re.FindStringSubmatch(c[mark:]); sm != nil {
				if len(sm) > 1 {
					return sm[1]
				}
				return sm[0]
			}
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("console did not show /%s/ within %s", pattern, timeout)
		}
		select {
		case <-m.exitedCh():
			m.t.Fatalf("QEMU exited while waiting for /%s/", pattern)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (m *Machine) exitedCh() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.exited == nil {
		c := make(chan struct{})
		close(c)
		return c
	}
	return m.exited
}

// qmp sends one QMP command.
func (m *Machine) qmp(command string, args map[string]any) {
	m.t.Helper()
	c, err := net.DialTimeout("unix", filepath.Join(m.dir, "qmp.sock"), 5*time.Second)
	if err != nil {
		m.t.Fatalf("qmp: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	if _, err := r.ReadString('\n'); err != nil { // greeting
		m.t.Fatalf("qmp greeting: %v", err)
	}
	enc := json.NewEncoder(c)
	cmd := map[string]any{"execute": command}
	if len(args) > 0 {
		cmd["arguments"] = args
	}
	for _, msg := range []map[string]any{{"execute": "qmp_capabilities"}, cmd} {
		if err := enc.Encode(msg); err != nil {
			m.t.Fatalf("qmp %s: %v", command, err)
		}
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				m.t.Fatalf("qmp %s: %v", command, err)
			}
			if strings.Contains(line, `"error"`) {
				m.t.Fatalf("qmp %s: %s", command, line)
			}
			if strings.Contains(line, `"return"`) {
				break
			}
		}
	}
}

// PowerButton presses the ACPI power button.
func (m *Machine) PowerButton() { m.t.Helper(); m.qmp("system_powerdown", nil) }

// CtrlAltDel sends Ctrl-Alt-Del, which the kernel hands to PID 1 as SIGINT.
func (m *Machine) CtrlAltDel() {
	m.t.Helper()
	m.qmp("send-key", map[string]any{"keys": []map[string]string{
		{"type": "qcode", "data": "ctrl"}, {"type": "qcode", "data": "alt"}, {"type": "qcode", "data": "delete"}}})
}

// WaitExit waits for QEMU to exit by itself (the guest powered off).
func (m *Machine) WaitExit(timeout time.Duration) {
	m.t.Helper()
	select {
	case <-m.exitedCh():
		m.mu.Lock()
		m.cmd = nil
		m.mu.Unlock()
	case <-time.After(timeout):
		m.t.Fatalf("QEMU did not exit within %s", timeout)
	}
}

// Kill cuts the power: QEMU is killed at once, nothing is flushed by the guest.
func (m *Machine) Kill() {
	m.mu.Lock()
	cmd, exited := m.cmd, m.exited
	m.cmd = nil
	m.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-exited
}

// ImageWithCmdline is a copy of the image under test whose GRUB
// environment adds args to the kernel command line (ros_cmdline in the
// ESP's grubenv, which grub.cfg appends), as an operator would.
func ImageWithCmdline(t *testing.T, args string) string {
	t.Helper()
	dir := t.TempDir()
	img := filepath.Join(dir, "cmdline.img")
	run(t, "cp", "--sparse=always", Image(t), img)
	env := filepath.Join(dir, "grubenv")
	esp := img + "@@1M" // the ESP starts at sector 2048
	run(t, "mcopy", "-i", esp, "::/EFI/ros/grubenv", env)
	run(t, "grub-editenv", env, "set", "ros_cmdline="+args)
	run(t, "mcopy", "-o", "-i", esp, env, "::/EFI/ros/grubenv")
	return img
}
