// Command ros-build is the build host's helper: it packs root file systems
// into OCI image archives, and lists the kernel modules an image needs. It
// never runs on a node.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	root := &cobra.Command{Use: "ros-build", Short: "Build helpers for the rosos image", SilenceUsage: true}
	root.AddCommand(ociCmd(), preloadCmd(), parsedCmd(), modulesCmd(), keygenCmd(), signCmd())
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "ros-build:", err)
		os.Exit(1)
	}
}
