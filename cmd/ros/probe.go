package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/rosos/ros/internal/supervisor"
)

// probeCmd is a health check for a service's compose file that needs no
// client of the service in its image: an HTTP GET, over TCP or a unix
// socket, that succeeds on a 2xx status.
func probeCmd() *cobra.Command {
	var socket string
	var timeout time.Duration
	c := &cobra.Command{
		Use:   "probe URL",
		Short: "Succeed when an HTTP GET of URL answers 2xx (a health check for services)",
		Long: "probe makes one HTTP GET of URL and exits 0 when the status is 2xx, 1 otherwise,\n" +
			"printing why. With --unix it connects to a unix socket instead, and the URL's host\n" +
			"is only a name. Bind /usr/bin/ros into a service to use it as its healthcheck:\n" +
			"the service manager then makes the same request itself, without running a\n" +
			"program in the container, where it can reach what the container would.",
		Example: "  ros probe --unix /var/run/docker.sock http://docker/_ping\n" +
			"  ros probe http://127.0.0.1:8080/healthz",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p := supervisor.Probe{URL: args[0], Socket: socket, Timeout: timeout}
			return p.Run(cmd.Context(), cmd.OutOrStdout())
		},
	}
	c.Flags().StringVar(&socket, "unix", "", "connect to this unix socket")
	c.Flags().DurationVar(&timeout, "timeout", supervisor.ProbeTimeout, "give up after this long")
	return c
}
