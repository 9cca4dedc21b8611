package main

import (
	"fmt"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

// PID 1 shuts down cleanly on these signals (see init/pid1).
func signalInit(sig unix.Signal, what string) error {
	if err := unix.Kill(1, sig); err != nil {
		return fmt.Errorf("%s: signal PID 1: %w (are you root?)", what, err)
	}
	return nil
}

func rebootCmd() *cobra.Command {
	return &cobra.Command{
		Use: "reboot", Short: "Stop every service cleanly and reboot", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return signalInit(unix.SIGTERM, "reboot") },
	}
}

func poweroffCmd() *cobra.Command {
	return &cobra.Command{
		Use: "poweroff", Short: "Stop every service cleanly and power off", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return signalInit(unix.SIGUSR2, "poweroff") },
	}
}

func haltCmd() *cobra.Command {
	return &cobra.Command{
		Use: "halt", Short: "Stop every service cleanly and halt", Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return signalInit(unix.SIGUSR1, "halt") },
	}
}
