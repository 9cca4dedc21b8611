package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of ros",
		Args:  cobra.NoArgs,
		Run:   func(*cobra.Command, []string) { fmt.Println(Version) },
	}
}
