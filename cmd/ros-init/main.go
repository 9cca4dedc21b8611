// Command ros-init is the node's init, apart from the ros command line so
// that PID 1 holds only what it runs: /init in the initramfs (stage 1),
// /sbin/init in the root (PID 1), and the node's /sbin/modprobe. The
// service manager PID 1 starts is `ros service-manager`.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/rosos/ros/init/pid1"
	"github.com/rosos/ros/init/stage1"
)

func main() {
	switch {
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
	fmt.Fprintln(os.Stderr, "ros-init is the node's init: /init in the initramfs, /sbin/init (PID 1) and /sbin/modprobe; the command line is ros")
	os.Exit(2)
}
