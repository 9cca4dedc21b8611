// Command ros-init is the node's init, apart from the ros command line so
// that PID 1 holds only what it runs: /init in the initramfs (stage 1),
// /sbin/init in the root (PID 1), and the node's /sbin/modprobe. The
// service manager PID 1 starts is `ros service-manager`. It is also
// `ros-init listen` (package activation), which binds a service's socket
// and runs its program with it: dockerd's, in the docker service.
//
// The runtime's cgroup-aware GOMAXPROCS is off: it keeps the cgroup's CPU
// limit file open for the process's life, on the lowest free descriptor,
// and listen needs descriptor 3 free for the socket it passes on. PID 1
// and the services that run this have no CPU quota.
//
//go:debug containermaxprocs=0
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/rosos/ros/init/pid1"
	"github.com/rosos/ros/init/stage1"
	"github.com/rosos/ros/system/activation"
)

func main() {
	switch {
	case len(os.Args) > 1 && os.Args[1] == "listen":
		// Before the PID 1 case: a container's first process is PID 1 too.
		os.Exit(activation.Main(os.Args[2:], os.Stderr))
	case filepath.Base(os.Args[0]) == "modprobe":
		os.Exit(modprobe(os.Args[1:]))
	case os.Args[0] == "/init" && os.Getpid() == 1:
		stage1.Fail(stage1.Run())
	case os.Getpid() == 1:
		if err := pid1.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "ros: init: %v\n", err)
		}
		select {} // PID 1 must not exit
	}
	fmt.Fprintln(os.Stderr, "ros-init is the node's init: /init in the initramfs, /sbin/init (PID 1), /sbin/modprobe and "+activation.Usage+"; the command line is ros")
	os.Exit(2)
}
