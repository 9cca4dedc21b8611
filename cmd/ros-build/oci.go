package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/spf13/cobra"
)

func ociCmd() *cobra.Command {
	var rootfs, ref, out string
	var entrypoint, cmd, env []string
	var labels map[string]string
	c := &cobra.Command{
		Use:   "oci --rootfs ROOTFS.tar --ref NAME:TAG --out IMAGE.tar",
		Short: "Pack a root file system tar into an image archive that containerd and docker load",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			sum, err := packImage(rootfs, ref, out, entrypoint, cmd, env, labels)
			if err != nil {
				return err
			}
			fmt.Println(sum)
			return nil
		},
	}
	c.Flags().StringVar(&rootfs, "rootfs", "", "root file system as a tar")
	c.Flags().StringVar(&ref, "ref", "", "image name and tag")
	c.Flags().StringVar(&out, "out", "", "archive to write")
	c.Flags().StringSliceVar(&entrypoint, "entrypoint", nil, "entrypoint")
	c.Flags().StringSliceVar(&cmd, "cmd", nil, "default command")
	c.Flags().StringSliceVar(&env, "env", []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, "environment")
	c.Flags().StringToStringVar(&labels, "label", nil, "image labels")
	for _, f := range []string{"rootfs", "ref", "out"} {
		_ = c.MarkFlagRequired(f)
	}
	return c
}

// packImage writes a one-layer image of rootfs, tagged ref, as a
// docker-archive tar (which `docker load` and containerd's import both
// read), and returns the archive's sha256.
func packImage(rootfs, ref, out string, entrypoint, cmd, env []string, labels map[string]string) (string, error) {
	tag, err := name.NewTag(ref)
	if err != nil {
		return "", fmt.Errorf("image name %q: %w", ref, err)
	}
	layer, err := tarball.LayerFromFile(rootfs)
	if err != nil {
		return "", fmt.Errorf("layer from %s: %w", rootfs, err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return "", err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return "", err
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS = "amd64", "linux"
	cf.Config = v1.Config{Entrypoint: entrypoint, Cmd: cmd, Env: env, Labels: labels}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return "", err
	}
	tmp := out + ".tmp"
	if err := tarball.WriteToFile(tmp, tag, img); err != nil {
		return "", fmt.Errorf("write %s: %w", out, err)
	}
	f, err := os.Open(tmp)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	_, err = io.Copy(h, f)
	f.Close()
	if err != nil {
		return "", err
	}
	if err := os.Rename(tmp, out); err != nil {
		return "", err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}
