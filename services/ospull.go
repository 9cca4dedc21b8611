package services

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/images/archive"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/platforms"
)

// pullDir holds an OS image pulled for an upgrade, as an archive, while it
// is written into the slot (persistent storage: it may be large).
const pullDir = "/var/lib/rancher/upgrade"

// pullArchive pulls ref through system containerd (the registry's digests
// checked by containerd) and exports it as an OCI image archive, which the
// upgrade then reads like a local one. The returned cleanup removes the
// archive and the image from containerd's store.
func pullArchive(ctx context.Context, client *containerd.Client, ref string, plainHTTP bool, out io.Writer) (string, func(), error) {
	name, err := NormalizeRef(ref)
	if err != nil {
		return "", nil, fmt.Errorf("image %q: %w", ref, err)
	}
	hosts := docker.ConfigureDefaultRegistries()
	if plainHTTP {
		hosts = docker.ConfigureDefaultRegistries(docker.WithPlainHTTP(docker.MatchAllHosts))
	}
	resolver := docker.NewResolver(docker.ResolverOptions{Hosts: hosts})
	fmt.Fprintf(out, "pulling %s through system containerd\n", name)
	start := time.Now()
	img, err := client.Pull(ctx, name, containerd.WithResolver(resolver), containerd.WithPlatform("linux/amd64"))
	if err != nil {
		return "", nil, fmt.Errorf("pull %s: %w", name, err)
	}
	fmt.Fprintf(out, "pulled %s (%s) in %s\n", name, img.Target().Digest, time.Since(start).Round(time.Second))
	removeImage := func() {
		_ = client.ImageService().Delete(context.WithoutCancel(ctx), name, images.SynchronousDelete())
	}
	if err := os.MkdirAll(pullDir, 0o700); err != nil {
		removeImage()
		return "", nil, err
	}
	path := filepath.Join(pullDir, "os.oci.tar")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_RDWR, 0o600)
	if err != nil {
		removeImage()
		return "", nil, err
	}
	cleanup := func() {
		_ = os.Remove(path)
		removeImage()
	}
	err = client.Export(ctx, f, archive.WithImage(client.ImageService(), name),
		archive.WithPlatform(platforms.OnlyStrict(platforms.MustParse("linux/amd64"))), archive.WithSkipDockerManifest())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		cleanup()
		return "", nil, fmt.Errorf("export %s: %w", name, err)
	}
	return path, cleanup, nil
}
