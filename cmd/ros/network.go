package main

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/rosos/ros/config"
	"github.com/rosos/ros/internal/paths"
	"github.com/rosos/ros/system/network"
)

// networkCmd is the network system service's program: it applies
// rancher.network from the node's merged config and keeps DHCP leases.
func networkCmd() *cobra.Command {
	var cfgPath, resolv, state, ready string
	c := &cobra.Command{
		Use:    "network",
		Short:  "Configure the network from rancher.network (the network service runs this)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			layer, err := config.ReadFile(cfgPath)
			if err != nil {
				return err
			}
			cfg, err := config.Merge(layer)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), unix.SIGTERM, unix.SIGINT)
			defer stop()
			lg := slog.New(slog.NewTextHandler(os.Stdout, nil))
			c := &network.Configurator{Config: cfg.Rancher.Network, ResolvPath: resolv, Log: lg, StateFile: state, ReadyFile: ready,
				// It stays for the whole uptime: what configuring took
				// goes back to the kernel now, not in the scavenger's own
				// time.
				OnReady: debug.FreeOSMemory}
			if err := c.Run(ctx); err != nil {
				return fmt.Errorf("network: %w", err)
			}
			return nil
		},
	}
	c.Flags().StringVar(&cfgPath, "config", paths.MergedConfig, "the merged node config")
	c.Flags().StringVar(&resolv, "resolv-conf", "/etc/resolv.conf", "resolv.conf to write")
	c.Flags().StringVar(&state, "state", "/run/ros-network/addresses.json", "where the static addresses set are kept, so a change removes those no longer configured (\"\": not kept)")
	c.Flags().StringVar(&ready, "ready", "/run/ros-network/configured", "written once the static configuration is applied (the docker service waits for it; \"\": not written)")
	return c
}
