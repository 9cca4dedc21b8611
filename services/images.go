package services

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// annotationImageName is the index annotation that names an image for
// containerd's import.
const annotationImageName = "io.containerd.image.name"

// PreloadedImages lists the images of the OCI layout in dir (the OS image's
// service images), by name, with their manifest digests.
func PreloadedImages(dir string) (map[string]string, error) {
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		return nil, err
	}
	var idx ocispec.Index
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "index.json"), err)
	}
	out := map[string]string{}
	for _, m := range idx.Manifests {
		if n := m.Annotations[annotationImageName]; n != "" {
			out[n] = m.Digest.String()
		}
	}
	return out, nil
}

// ImportPreloaded imports the OS image's service images (an OCI layout in
// dir) into containerd when any of them is missing or differs from what is
// there, and unpacks them. Layers the images share are stored and unpacked
// once. It returns how many images it imported.
func ImportPreloaded(ctx context.Context, client *containerd.Client, dir string) (int, error) {
	want, err := PreloadedImages(dir)
	if os.IsNotExist(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	stale := 0
	for name, digest := range want {
		img, err := client.GetImage(ctx, name)
		switch {
		case errdefs.IsNotFound(err):
			stale++
		case err != nil:
			return 0, err
		case img.Target().Digest.String() != digest:
			stale++
		}
	}
	if stale == 0 {
		return 0, nil
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(tarDir(pw, dir)) }()
	imgs, err := client.Import(ctx, pr)
	pr.Close()
	if err != nil {
		return 0, fmt.Errorf("import %s: %w", dir, err)
	}
	for _, i := range imgs {
		if err := containerd.NewImage(client, i).Unpack(ctx, snapshotter); err != nil {
			return 0, fmt.Errorf("unpack %s: %w", i.Name, err)
		}
	}
	return len(imgs), nil
}

// tarDir writes the files under dir as a tar stream (what containerd's
// import reads).
func tarDir(w io.Writer, dir string) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		h, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		h.Name = filepath.ToSlash(rel)
		if d.IsDir() {
			h.Name += "/"
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		return err
	}
	return tw.Close()
}
