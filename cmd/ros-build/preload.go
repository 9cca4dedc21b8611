package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/spf13/cobra"
)

// preloadCmd writes the image.json of a preloaded image: its name and the
// parts of its config a container needs (package services reads it).
func preloadCmd() *cobra.Command {
	var dir, out string
	c := &cobra.Command{
		Use:   "preload --layout DIR --out image.json",
		Short: "Describe the image of an OCI layout for the node's service runner",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			idx, err := layout.ImageIndexFromPath(dir)
			if err != nil {
				return err
			}
			im, err := idx.IndexManifest()
			if err != nil {
				return err
			}
			if len(im.Manifests) != 1 {
				return fmt.Errorf("%s: want one image, found %d", dir, len(im.Manifests))
			}
			desc := im.Manifests[0]
			ref := desc.Annotations[AnnotationImageName]
			if ref == "" {
				return fmt.Errorf("%s: the image has no %s annotation", dir, AnnotationImageName)
			}
			img, err := idx.Image(desc.Digest)
			if err != nil {
				return err
			}
			cf, err := img.ConfigFile()
			if err != nil {
				return err
			}
			b, err := json.MarshalIndent(map[string]any{
				"ref": ref, "entrypoint": cf.Config.Entrypoint, "cmd": cf.Config.Cmd, "env": cf.Config.Env,
				"working_dir": cf.Config.WorkingDir, "user": cf.Config.User, "digest": desc.Digest.String(),
			}, "", "  ")
			if err != nil {
				return err
			}
			return os.WriteFile(out, append(b, '\n'), 0o644)
		},
	}
	c.Flags().StringVar(&dir, "layout", "", "OCI image layout with one image")
	c.Flags().StringVar(&out, "out", "", "image.json to write")
	_ = c.MarkFlagRequired("layout")
	_ = c.MarkFlagRequired("out")
	return c
}
