package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

// listenFD is the first descriptor of systemd's socket activation
// (SD_LISTEN_FDS_START).
const listenFD = 3

// listenCmd binds a unix socket and runs a program that takes it over by
// systemd's socket activation, as Debian's docker.socket does for dockerd:
// a client that connects before the program answers waits in the socket's
// queue instead of being refused.
func listenCmd() *cobra.Command {
	var group string
	var mode uint32
	var backlog int
	c := &cobra.Command{
		Use:   "listen --unix PATH [--group G] [--mode M] -- COMMAND [ARG...]",
		Short: "Bind a unix socket and run COMMAND with it, by systemd's socket activation",
		Long: "listen binds and listens on the unix socket PATH (a stale socket there is\n" +
			"replaced; any other file is an error), then runs COMMAND in its place with the\n" +
			"socket as descriptor 3 and LISTEN_FDS=1, LISTEN_PID and LISTEN_FDNAMES set, as\n" +
			"systemd does for a socket unit. The docker service runs dockerd this way\n" +
			"(dockerd --host=fd://), so that a client started during the boot waits for the\n" +
			"engine instead of failing to connect.",
		Example: "  ros listen --unix /var/run/docker.sock --group docker -- dockerd --host=fd://",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, _ := cmd.Flags().GetString("unix")
			if path == "" {
				return errors.New("listen: --unix PATH is required")
			}
			// The socket first, before anything opens a file: Go's poller
			// takes the lowest free descriptors when a first file is
			// opened, and 3 must be the socket's.
			if err := bindActivated(path, backlog); err != nil {
				return err
			}
			err := finishActivated(path, group, os.FileMode(mode))
			if err == nil {
				var bin string
				if bin, err = exec.LookPath(args[0]); err == nil {
					env := activationEnv(os.Environ(), os.Getpid(), filepath.Base(path))
					err = syscall.Exec(bin, args, env)
				}
			}
			_ = os.Remove(path)
			return fmt.Errorf("listen: %w", err)
		},
	}
	c.Flags().String("unix", "", "the unix socket to bind")
	c.Flags().StringVar(&group, "group", "", "the socket's group (a name or a number)")
	c.Flags().Uint32Var(&mode, "mode", 0o660, "the socket's permissions")
	c.Flags().IntVar(&backlog, "backlog", unix.SOMAXCONN, "connections the socket queues before the program accepts them")
	return c
}

// lookupGID reads a group name or number.
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

// bindActivated binds a listening unix socket at path on descriptor 3,
// inherited across exec, with no permissions for others yet. A socket
// file already at path is removed first: it is a stale one, since its
// owner would be this service's earlier run. Descriptor 3 must be free:
// the caller closes what it would pass there (docker-start: 3>&-).
func bindActivated(path string, backlog int) error {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != os.ModeSocket {
			return fmt.Errorf("listen: %s exists and is not a socket (%s)", path, fi.Mode().Type())
		}
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("listen: remove the stale socket: %w", err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if target, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(listenFD)); err == nil {
		return fmt.Errorf("listen: descriptor %d is open already (%s): close it for ros listen", listenFD, target)
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		return fmt.Errorf("listen: socket: %w", err)
	}
	if fd != listenFD {
		_ = unix.Close(fd)
		return fmt.Errorf("listen: the socket is descriptor %d, not %d: descriptors 0-2 must be open", fd, listenFD)
	}
	// Made with no permissions for group and others, then given the
	// socket's mode and group (finishActivated).
	old := unix.Umask(0o177)
	err = unix.Bind(fd, &unix.SockaddrUnix{Name: path})
	unix.Umask(old)
	if err == nil {
		err = unix.Listen(fd, backlog)
		if err != nil {
			_ = os.Remove(path)
		}
	}
	if err != nil {
		_ = unix.Close(fd)
		return fmt.Errorf("listen: %s: %w", path, err)
	}
	return nil
}

// finishActivated gives the bound socket its group (a name or a number;
// "" keeps the caller's) and mode.
func finishActivated(path, group string, mode os.FileMode) error {
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

// activationEnv is env with systemd's activation variables for one
// socket given to pid, and none of an earlier activation's.
func activationEnv(env []string, pid int, name string) []string {
	out := make([]string, 0, len(env)+3)
	for _, kv := range env {
		switch {
		case hasKey(kv, "LISTEN_FDS"), hasKey(kv, "LISTEN_PID"), hasKey(kv, "LISTEN_FDNAMES"):
			continue
		}
		out = append(out, kv)
	}
	return append(out, "LISTEN_FDS=1", "LISTEN_PID="+strconv.Itoa(pid), "LISTEN_FDNAMES="+name)
}

func hasKey(kv, key string) bool {
	return len(kv) > len(key) && kv[:len(key)] == key && kv[len(key)] == '='
}
