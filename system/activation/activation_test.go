// The test binary is the listen command too (ROS_TEST_RUN=listen): the
// runtime must leave descriptor 3 free, as in ros-init.
//
//go:debug containermaxprocs=0
package activation

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestMain lets a test run this binary as `ros-init listen`
// (ROS_TEST_RUN=listen) or as a socket-activated program
// (ROS_TEST_RUN=activated).
func TestMain(m *testing.M) {
	switch os.Getenv("ROS_TEST_RUN") {
	case "listen":
		os.Exit(Main(os.Args[1:], os.Stderr))
	case "activated":
		os.Exit(activated())
	}
	os.Exit(m.Run())
}

// activated is a program started by listen: it checks systemd's
// variables as go-systemd's activation.Listeners does, and answers one
// connection on descriptor 3 with what it found.
func activated() int {
	if os.Getenv("LISTEN_PID") != strconv.Itoa(os.Getpid()) || os.Getenv("LISTEN_FDS") != "1" {
		os.Stderr.WriteString("activation variables: LISTEN_PID=" + os.Getenv("LISTEN_PID") + " LISTEN_FDS=" + os.Getenv("LISTEN_FDS") + "\n")
		return 2
	}
	l, err := net.FileListener(os.NewFile(3, "activated"))
	if err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		return 3
	}
	c, err := l.Accept()
	if err != nil {
		return 4
	}
	defer c.Close()
	_, _ = c.Write([]byte("activated " + os.Getenv("LISTEN_FDNAMES") + "\n"))
	return 0
}

func TestMainActivates(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "run", "app.sock")
	// A stale socket from an earlier run is replaced.
	if err := os.MkdirAll(filepath.Dir(sock), 0o755); err != nil {
		t.Fatal(err)
	}
	stale, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()

	gid := os.Getgid()
	// listen execs the program, which must find ROS_TEST_RUN=activated:
	// env(1) sets it. LISTEN_FDS from the caller is replaced.
	cmd := exec.Command(os.Args[0], "--unix", sock, "--group", strconv.Itoa(gid), "--mode", "0640", "--",
		"env", "ROS_TEST_RUN=activated", os.Args[0])
	cmd.Env = append(os.Environ(), "ROS_TEST_RUN=listen", "LISTEN_FDS=7")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	// A client that connects before the program accepts waits in the
	// socket's queue: dial as soon as the socket is there.
	var c net.Conn
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if c, err = net.Dial("unix", sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dial %s: %v (listen: %s)", sock, err, stderr.String())
		}
	}
	defer c.Close()
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "activated app.sock\n" {
		t.Fatalf("the program answered %q, %v; want \"activated app.sock\" (stderr: %s)", line, err, stderr.String())
	}
	if err := <-done; err != nil {
		t.Fatalf("listen's program: %v: %s", err, stderr.String())
	}
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o640 {
		t.Errorf("socket mode %s, want a socket with 0640", fi.Mode())
	}
}

func TestMainRefuses(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "not-a-socket")
	if err := os.WriteFile(file, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "s.sock")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--unix", file, "--", "true"}, "exists and is not a socket"},
		{[]string{"--unix", sock, "--group", "no-such-group-here", "--", "true"}, `group "no-such-group-here"`},
		{[]string{"--unix", sock, "--", "/no/such/program"}, "/no/such/program"},
		{[]string{"--unix", sock, "--mode", "rw", "--", "true"}, `--mode "rw"`},
		{[]string{"--unix", sock}, "no COMMAND"},
		{[]string{"--", "true"}, "--unix PATH is required"},
	} {
		cmd := exec.Command(os.Args[0], tc.args...)
		cmd.Env = append(os.Environ(), "ROS_TEST_RUN=listen")
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), tc.want) {
			t.Errorf("listen %s: %v, %q; want an error with %q", strings.Join(tc.args, " "), err, out, tc.want)
		}
	}
	if b, _ := os.ReadFile(file); string(b) != "keep me" {
		t.Errorf("the file that is not a socket was changed: %q", b)
	}
	if _, err := os.Lstat(sock); err == nil {
		t.Errorf("a failed listen left its socket %s", sock)
	}
}

func TestEnv(t *testing.T) {
	got := Env([]string{"PATH=/bin", "LISTEN_FDS=4", "LISTEN_PIDX=1", "LISTEN_PID=9", "LISTEN_FDNAMES=a:b"}, 42, "docker.sock")
	want := "PATH=/bin LISTEN_PIDX=1 LISTEN_FDS=1 LISTEN_PID=42 LISTEN_FDNAMES=docker.sock"
	if strings.Join(got, " ") != want {
		t.Errorf("Env: %q, want %q", strings.Join(got, " "), want)
	}
}
