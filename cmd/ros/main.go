// Command ros is the node's command line and its service manager
// (`ros service-manager`, started by PID 1). The init (stage 1, PID 1,
// modprobe) is cmd/ros-init.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// Version is set at build time (-ldflags -X main.Version=...).
var Version = "dev"

func main() {
	os.Exit(run(os.Args[1:]))
}

// run runs the ros command line and returns its exit status: a command's
// own (ros service exec) or 1 for an error, which it prints.
func run(args []string) int {
	c := root()
	c.SetArgs(args)
	err := c.Execute()
	var code exitCode
	switch {
	case err == nil:
		return 0
	case errors.As(err, &code):
		return int(code)
	}
	fmt.Fprintln(os.Stderr, "Error:", err)
	return 1
}

func root() *cobra.Command {
	c := &cobra.Command{
		Use:           "ros",
		Short:         "Control a rosos node",
		SilenceUsage:  true,
		SilenceErrors: true, // run prints them, but for an exit status
		Example: "  ros service list\n  ros config set rancher.network.dns.nameservers '[1.1.1.1]'\n" +
			"  ros os upgrade --image registry.example:5000/rosos/os:v1.2.0",
	}
	c.AddCommand(versionCmd(), probeCmd(), rebootCmd(), poweroffCmd(), haltCmd(), serviceManagerCmd(), networkCmd(), serviceCmd(), configCmd(), osCmd(), installCmd(), bootCmd())
	c.DisableAutoGenTag = true // docs/ros.md stays the same from one day to the next
	c.InitDefaultCompletionCmd()
	return c
}
