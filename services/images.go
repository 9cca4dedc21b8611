package services

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/errdefs"
)

// Preloaded is one image archive shipped in the OS image, as listed in
// images.json beside the archives.
type Preloaded struct {
	File   string `json:"file"`   // archive name in the images directory
	Ref    string `json:"ref"`    // the image name it holds
	Digest string `json:"digest"` // sha256 of the archive, to know an import is current
}

const labelArchive = "io.rosos.archive"

// ImportPreloaded imports the OS image's service images into containerd,
// skipping those already imported from the same archive. It returns how many
// it imported.
func ImportPreloaded(ctx context.Context, client *containerd.Client, dir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dir, "images.json"))
	if os.IsNotExist(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var list []Preloaded
	if err := json.Unmarshal(b, &list); err != nil {
		return 0, fmt.Errorf("%s: %w", filepath.Join(dir, "images.json"), err)
	}
	n := 0
	for _, p := range list {
		name, err := NormalizeRef(p.Ref)
		if err != nil {
			return n, err
		}
		if img, err := client.GetImage(ctx, name); err == nil && img.Labels()[labelArchive] == p.Digest {
			continue
		} else if err != nil && !errdefs.IsNotFound(err) {
			return n, err
		}
		if err := importOne(ctx, client, filepath.Join(dir, p.File), p.Digest); err != nil {
			return n, fmt.Errorf("import %s: %w", p.File, err)
		}
		n++
	}
	return n, nil
}

func importOne(ctx context.Context, client *containerd.Client, path, digest string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	imgs, err := client.Import(ctx, f, containerd.WithImageLabels(map[string]string{labelArchive: digest}))
	if err != nil {
		return err
	}
	for _, i := range imgs {
		if err := containerd.NewImage(client, i).Unpack(ctx, snapshotter); err != nil {
			return fmt.Errorf("unpack %s: %w", i.Name, err)
		}
	}
	return nil
}
