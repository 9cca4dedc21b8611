// Package activation binds a unix socket and runs a program with it by
// systemd's socket activation (LISTEN_FDS, LISTEN_PID, descriptor 3), as
// Debian's docker.socket does for dockerd: a client that connects before
// the program answers waits in the socket's queue instead of being
// refused. It is `ros-init listen`, small so that it starts fast.
package activation

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// FD is the first descriptor of socket activation (SD_LISTEN_FDS_START).
const FD = 3

// Usage is Main's synopsis.
const Usage = "ros-init listen --unix PATH [--group G] [--mode M] [--backlog N] -- COMMAND [ARG...]"

// Main is `ros-init listen`: it binds the unix socket PATH (a stale socket
// there is replaced; any other file is an error), gives it its group and
// mode, and execs COMMAND with the socket as descriptor 3 and LISTEN_FDS=1,
// LISTEN_PID (its own pid: exec keeps it) and LISTEN_FDNAMES set. It
// returns an exit status only when it could not exec COMMAND.
func Main(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("listen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, "usage:", Usage) }
	path := fs.String("unix", "", "the unix socket to bind")
	group := fs.String("group", "", "the socket's group (a name or a number)")
	mode := fs.String("mode", "0660", "the socket's permissions (octal)")
	backlog := fs.Int("backlog", unix.SOMAXCONN, "connections queued before the program accepts them")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintln(stderr, "ros-init listen:", err)
		return 1
	}
	cmd := fs.Args()
	perm, err := strconv.ParseUint(*mode, 8, 32)
	switch {
	case *path == "":
		return fail(errors.New("--unix PATH is required"))
	case len(cmd) == 0:
		return fail(errors.New("no COMMAND to run"))
	case err != nil || perm > 0o777:
		return fail(fmt.Errorf("--mode %q: want permissions in octal, such as 0660", *mode))
	}
	// The socket first, before anything opens a file: Go's poller takes
	// the lowest free descriptors when a first file is opened, and 3 must
	// be the socket's.
	if err := Bind(*path, *backlog); err != nil {
		return fail(err)
	}
	err = Finish(*path, *group, os.FileMode(perm))
	if err == nil {
		var bin string
		if bin, err = exec.LookPath(cmd[0]); err == nil {
			err = syscall.Exec(bin, cmd, Env(os.Environ(), os.Getpid(), filepath.Base(*path)))
			err = fmt.Errorf("run %s: %w", bin, err)
		}
	}
	_ = os.Remove(*path)
	return fail(err)
}

// Bind binds a listening unix socket at path on descriptor 3, inherited
// across exec, with no permissions for group and others yet (Finish gives
// them). A socket file already at path is removed first: a stale one, as
// its owner would be this service's earlier run. Descriptor 3 must be
// free, and no file opened before: call it first.
func Bind(path string, backlog int) error {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != os.ModeSocket {
			return fmt.Errorf("%s exists and is not a socket (%s)", path, fi.Mode().Type())
		}
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("remove the stale socket: %w", err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if target, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(FD)); err == nil {
		return fmt.Errorf("descriptor %d is open already (%s): close it for the socket", FD, target)
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	if fd != FD {
		_ = unix.Close(fd)
		return fmt.Errorf("the socket is descriptor %d, not %d: descriptors 0-2 must be open", fd, FD)
	}
	old := unix.Umask(0o177)
	err = unix.Bind(fd, &unix.SockaddrUnix{Name: path})
	unix.Umask(old)
	if err == nil {
		if err = unix.Listen(fd, backlog); err != nil {
			_ = os.Remove(path)
		}
	}
	if err != nil {
		_ = unix.Close(fd)
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// Finish gives the bound socket its group (a name or a number; "" keeps
// the caller's) and mode.
func Finish(path, group string, mode os.FileMode) error {
	if group != "" {
		gid, err := lookupGID(group)
		if err != nil {
			return err
		}
		if err := os.Lchown(path, -1, gid); err != nil {
			return err
		}
	}
	return os.Chmod(path, mode.Perm())
}

func lookupGID(group string) (int, error) {
	if n, err := strconv.Atoi(group); err == nil && n >= 0 {
		return n, nil
	}
	g, err := user.LookupGroup(group)
	if err != nil {
		return -1, fmt.Errorf("group %q: %w", group, err)
	}
	return strconv.Atoi(g.Gid)
}

// Env is env with the activation variables for one socket given to pid,
// and none of an earlier activation's.
func Env(env []string, pid int, name string) []string {
	out := make([]string, 0, len(env)+3)
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if k == "LISTEN_FDS" || k == "LISTEN_PID" || k == "LISTEN_FDNAMES" {
			continue
		}
		out = append(out, kv)
	}
	return append(out, "LISTEN_FDS=1", "LISTEN_PID="+strconv.Itoa(pid), "LISTEN_FDNAMES="+name)
}
