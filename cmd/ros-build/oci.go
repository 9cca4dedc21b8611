package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/spf13/cobra"
)

// AnnotationImageName is the index annotation containerd's import names an
// image by.
const AnnotationImageName = "io.containerd.image.name"

type imageSpec struct {
	rootfs, base, ref, out string
	entrypoint, cmd, env   []string
	labels                 map[string]string
}

func ociCmd() *cobra.Command {
	var s imageSpec
	c := &cobra.Command{
		Use:   "oci --rootfs ROOTFS.tar [--base BASE.tar.gz] --ref NAME:TAG --layout DIR",
		Short: "Pack a root file system tar into an OCI image layout; with --base, as a layer over the base's",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			sum, err := packImage(s)
			if err != nil {
				return err
			}
			fmt.Println(sum)
			return nil
		},
	}
	c.Flags().StringVar(&s.rootfs, "rootfs", "", "the image's whole root file system, as a tar")
	c.Flags().StringVar(&s.base, "base", "", "a base root file system tar: the image is its layer plus the difference")
	c.Flags().StringVar(&s.ref, "ref", "", "image name and tag")
	c.Flags().StringVar(&s.out, "layout", "", "OCI image layout directory to write (replaced)")
	c.Flags().StringSliceVar(&s.entrypoint, "entrypoint", nil, "entrypoint")
	c.Flags().StringSliceVar(&s.cmd, "cmd", nil, "default command")
	c.Flags().StringSliceVar(&s.env, "env", []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, "environment")
	c.Flags().StringToStringVar(&s.labels, "label", nil, "image labels")
	for _, f := range []string{"rootfs", "ref", "layout"} {
		_ = c.MarkFlagRequired(f)
	}
	return c
}

// packImage writes the image into a new OCI layout and returns its manifest
// digest. With a base, the image has two layers: the base (byte for byte
// the same in every image, so a node stores and unpacks it once) and what
// the image adds to it.
func packImage(s imageSpec) (string, error) {
	tag, err := name.NewTag(s.ref)
	if err != nil {
		return "", fmt.Errorf("image name %q: %w", s.ref, err)
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	top := s.rootfs
	if s.base != "" {
		baseLayer, err := newRawLayer(s.base)
		if err != nil {
			return "", fmt.Errorf("base layer %s: %w", s.base, err)
		}
		if img, err = mutate.AppendLayers(img, baseLayer); err != nil {
			return "", err
		}
		diff, err := os.CreateTemp(filepath.Dir(s.out), "diff-*.tar")
		if err != nil {
			return "", err
		}
		defer func() { _ = os.Remove(diff.Name()) }()
		kept, removed, err := writeDiff(s.base, s.rootfs, diff)
		if cerr := diff.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return "", fmt.Errorf("difference of %s over %s: %w", s.rootfs, s.base, err)
		}
		fmt.Fprintf(os.Stderr, "%s: %d entries over the base, %d removed\n", s.ref, kept, removed)
		top = diff.Name()
	}
	layer, err := newRawLayer(top)
	if err != nil {
		return "", fmt.Errorf("layer from %s: %w", top, err)
	}
	if img, err = mutate.AppendLayers(img, layer); err != nil {
		return "", err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return "", err
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS = "amd64", "linux"
	cf.Config = v1.Config{Entrypoint: s.entrypoint, Cmd: s.cmd, Env: s.env, Labels: s.labels}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return "", err
	}
	if err := os.RemoveAll(s.out); err != nil {
		return "", err
	}
	p, err := layout.Write(s.out, empty.Index)
	if err != nil {
		return "", err
	}
	// The name as given (docker.io/rosos/x:v), not go-containerregistry's
	// normal form (index.docker.io/...), which containerd would not find.
	full := s.ref
	if err := p.AppendImage(img,
		layout.WithPlatform(v1.Platform{Architecture: "amd64", OS: "linux"}),
		layout.WithAnnotations(map[string]string{AnnotationImageName: full, "org.opencontainers.image.ref.name": tag.TagStr()}),
	); err != nil {
		return "", fmt.Errorf("write %s: %w", s.out, err)
	}
	d, err := img.Digest()
	if err != nil {
		return "", err
	}
	return d.String(), nil
}
