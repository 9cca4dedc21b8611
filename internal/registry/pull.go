package registry

import (
	"context"
	"fmt"
	"io"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/rosos/ros/system/osimage"
)

// PullArchive pulls ref through system containerd (the registry's digests
// checked by containerd) and opens it from containerd's content store, so
// the upgrade reads its layers from there (checking their digests again)
// with no copy in between. The returned cleanup closes the blobs and
// removes the image from containerd.
//
// The image's signatures, if any, are the registry's: signatures reads
// them (the tag sha256-HEX.sig of each digest the image goes by).
func PullArchive(ctx context.Context, client *containerd.Client, ref string, plainHTTP bool, creds Credentials, out io.Writer) (a *osimage.Archive, signatures func() ([]osimage.Signature, error), cleanup func(), err error) {
	name, err := NormalizeRef(ref)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("image %q: %w", ref, err)
	}
	resolver := NewResolver(plainHTTP, creds)
	fmt.Fprintf(out, "pulling %s through system containerd\n", name)
	start := time.Now()
	img, err := client.Pull(ctx, name, containerd.WithResolver(resolver), containerd.WithPlatform("linux/amd64"))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("pull %s: %w", name, err)
	}
	fmt.Fprintf(out, "pulled %s (%s) in %s\n", name, img.Target().Digest, time.Since(start).Round(time.Second))
	var opened []io.Closer
	cleanup = func() {
		for _, c := range opened {
			_ = c.Close()
		}
		_ = client.ImageService().Delete(context.WithoutCancel(ctx), name, images.SynchronousDelete())
	}
	store := client.ContentStore()
	get := func(d string) (io.ReaderAt, int64, error) {
		dg, err := digest.Parse(d)
		if err != nil {
			return nil, 0, err
		}
		ra, err := store.ReaderAt(ctx, ocispec.Descriptor{Digest: dg})
		if err != nil {
			return nil, 0, err
		}
		opened = append(opened, ra)
		return ra, ra.Size(), nil
	}
	t := img.Target()
	a, err = osimage.OpenBlobs(osimage.Descriptor{MediaType: t.MediaType, Digest: t.Digest.String(), Size: t.Size}, get)
	if err != nil {
		cleanup()
		return nil, nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	signatures = func() ([]osimage.Signature, error) {
		var all []osimage.Signature
		for _, d := range a.Subjects {
			sigs, err := FetchSignatures(ctx, resolver, name, d)
			if err != nil {
				return nil, err
			}
			all = append(all, sigs...)
		}
		return all, nil
	}
	return a, signatures, cleanup, nil
}
