package main

import (
	"context"
	"os"
	"os/signal"

	"github.com/rosos/ros/internal/daemon"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

// serviceManagerCmd is the service manager that PID 1 runs and supervises.
func serviceManagerCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "service-manager",
		Short:  "Run the system service manager (started by PID 1)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), unix.SIGTERM, unix.SIGINT)
			defer stop()
			console, err := os.OpenFile("/dev/console", os.O_WRONLY|unix.O_NOCTTY, 0)
			if err != nil {
				console = os.Stderr
			}
			var status *os.File
			if os.Getenv("ROS_STATUS_FD") == "3" {
				status = os.NewFile(3, "status")
			}
			return daemon.Run(ctx, console, os.Stdout, status)
		},
	}
}
