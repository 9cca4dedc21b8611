package main

import (
	"bytes"
	"fmt"
	"os"

	"github.com/rosos/ros/config"
	"github.com/rosos/ros/internal/compose"
	"github.com/rosos/ros/internal/daemon"
	"github.com/spf13/cobra"
)

// parsedCmd writes the parses of an image's own service definitions
// (paths.ParsedServices), so that its boots need not run compose-go.
func parsedCmd() *cobra.Command {
	var cfgPath, version, out string
	c := &cobra.Command{
		Use:   "parsed --config os-config.yml --version VERSION --out services.parsed.json",
		Short: "Parse the image's service definitions ahead, as its boots would",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			l, err := config.ReadFile(cfgPath)
			if err != nil {
				return err
			}
			cfg, err := config.Merge(l)
			if err != nil {
				return err
			}
			ins, err := daemon.KnownInputs(cfg, version)
			if err != nil {
				return err
			}
			var b bytes.Buffer
			if err := compose.WriteKnown(&b, ins); err != nil {
				return fmt.Errorf("%s: %w", cfgPath, err)
			}
			return os.WriteFile(out, b.Bytes(), 0o644)
		},
	}
	c.Flags().StringVar(&cfgPath, "config", "", "the image's config layer (os-config.yml, rendered)")
	c.Flags().StringVar(&version, "version", "", "the image's version (ROS_VERSION)")
	c.Flags().StringVar(&out, "out", "", "the file to write")
	for _, f := range []string{"config", "version", "out"} {
		_ = c.MarkFlagRequired(f)
	}
	return c
}
