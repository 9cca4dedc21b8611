// Command ros is the one binary of the OS: /init in the initramfs (stage 1),
// /sbin/init in the root (PID 1), and the ros command line.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/rosos/ros/init/pid1"
	"github.com/rosos/ros/init/stage1"
)

// Version is set at build time (-ldflags -X main.Version=...).
var Version = "dev"

func main() {
	switch {
	case filepath.Base(os.Args[0]) == "modprobe":
		os.Exit(modprobe(os.Args[1:]))
	case os.Args[0] == "/init" && os.Getpid() == 1:
		stage1.Fail(stage1.Run())
	case filepath.Base(os.Args[0]) == "init" && os.Getpid() == 1:
		if err := pid1.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "ros: init: %v\n", err)
		}
		select {} // PID 1 must not exit
	}
	if err := root().Execute(); err != nil {
		os.Exit(1)
	}
}

func root() *cobra.Command {
	c := &cobra.Command{
		Use:           "ros",
		Short:         "Control a rosos node",
		SilenceUsage:  true,
		SilenceErrors: false,
	}
	c.AddCommand(versionCmd(), rebootCmd(), poweroffCmd(), haltCmd(), serviceManagerCmd(), networkCmd(), serviceCmd(), configCmd(), osCmd(), installCmd(), bootCmd())
	return c
}
