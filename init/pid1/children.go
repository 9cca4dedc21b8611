package pid1

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/rosos/ros/internal/paths"
	"golang.org/x/sys/unix"
)

const containerdConfig = `version = 3
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.cri.v1.images", "io.containerd.cri.v1.runtime", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.blockfile", "io.containerd.snapshotter.v1.erofs", "io.containerd.differ.v1.erofs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing", "io.containerd.nri.v1.nri"]

[grpc]
  address = %q

[ttrpc]
  address = %q
`

// startContainerd starts system containerd under supervision.
func (in *Init) startContainerd() *child {
	cfg := filepath.Join(paths.ContainerdState, "config.toml")
	c := &child{
		name:   "system containerd",
		reaper: in.reaper,
		log:    in.log.Printf,
		make: func() (*exec.Cmd, func(), error) {
			body := fmt.Sprintf(containerdConfig, paths.ContainerdRoot, paths.ContainerdState, paths.ContainerdSock, paths.ContainerdSock+".ttrpc")
			if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
				return nil, nil, err
			}
			out, err := logFile("/var/log/system-containerd.log")
			if err != nil {
				return nil, nil, err
			}
			cmd := exec.Command("/usr/bin/containerd", "--config", cfg)
			cmd.Stdout, cmd.Stderr = out, out
			cmd.Env = []string{"PATH=/usr/bin:/usr/sbin:/bin:/sbin"}
			// Not in PID 1's session: a signal to PID 1's group must not reach it.
			cmd.SysProcAttr = &unix.SysProcAttr{Setsid: true}
			return cmd, func() { out.Close() }, nil
		},
	}
	c.supervise()
	return c
}

// superviseManager starts the service manager under supervision. Each run
// gets a fresh status pipe on fd 3, on which it says when the boot is done.
func (in *Init) superviseManager(ready chan<- Ready) *child {
	c := &child{
		name:   "service manager",
		reaper: in.reaper,
		log:    in.log.Printf,
		make: func() (*exec.Cmd, func(), error) {
			r, w, err := os.Pipe()
			if err != nil {
				return nil, nil, err
			}
			out, err := logFile(filepath.Join(paths.SystemLogDir, "service-manager.log"))
			if err != nil {
				r.Close()
				w.Close()
				return nil, nil, err
			}
			cmd := managerCommand()
			// The manager's errors go to its log and, for what a user must
			// see during boot, to the console, which it opens itself.
			cmd.Stdout, cmd.Stderr = out, out
			cmd.ExtraFiles = []*os.File{w}
			cmd.Env = []string{"PATH=/usr/bin:/usr/sbin:/bin:/sbin", "ROS_STATUS_FD=3"}
			cmd.SysProcAttr = &unix.SysProcAttr{Setsid: true}
			return cmd, func() {
				w.Close()
				out.Close()
				go readReady(r, ready)
			}, nil
		},
	}
	c.supervise()
	return c
}
