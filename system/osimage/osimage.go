// Package osimage reads an OS image from an OCI image archive (a tar of an
// OCI image layout, as `make os-image` writes and `skopeo copy
// oci-archive:` reads) and unpacks its root file system into a directory,
// checking every digest on the way. It reads the archive in one pass per
// blob, by offset, so the archive may be a file or a block device.
package osimage

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
)

// Labels an OS image of this project carries in its config.
const (
	LabelOS      = "io.rosos.os"                      // "true"
	LabelVersion = "org.opencontainers.image.version" // the OS version
)

// Media types.
const (
	mtIndex     = "application/vnd.oci.image.index.v1+json"
	mtManifest  = "application/vnd.oci.image.manifest.v1+json"
	mtDockerMan = "application/vnd.docker.distribution.manifest.v2+json"
	mtLayerTar  = "application/vnd.oci.image.layer.v1.tar"
	mtLayerGz   = "application/vnd.oci.image.layer.v1.tar+gzip"
	mtDockerGz  = "application/vnd.docker.image.rootfs.diff.tar.gzip"
)

// Descriptor is an OCI content descriptor.
type Descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Platform    *struct {
		Architecture string `json:"architecture"`
		OS           string `json:"os"`
	} `json:"platform,omitempty"`
}

type index struct {
	Manifests []Descriptor `json:"manifests"`
}

type manifest struct {
	MediaType string       `json:"mediaType"`
	Config    Descriptor   `json:"config"`
	Layers    []Descriptor `json:"layers"`
}

// Config is the part of the image config an OS image needs.
type Config struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Config       struct {
		Labels map[string]string `json:"Labels"`
	} `json:"config"`
}

// Archive is an opened OS image: from an archive (Open) or from a content
// store (OpenBlobs).
type Archive struct {
	// blob opens a file of the image layout by name (index.json,
	// blobs/sha256/HEX).
	blob   func(name string) (*io.SectionReader, error)
	Digest string // the manifest's digest
	Config Config
	Layers []Descriptor
	// Subjects are the digests a signature of this image may name: the
	// manifest's, and the platform index's when it came through one.
	Subjects []string
	// verified is set once Verify read every layer and found it sound.
	verified bool
	index    index // the archive's index.json, or the target given to OpenBlobs
}

type span struct{ off, size int64 }

// Version is the OS version the image says it is.
func (a *Archive) Version() string { return a.Config.Config.Labels[LabelVersion] }

// Size is the total size of the layers.
func (a *Archive) Size() int64 {
	var n int64
	for _, l := range a.Layers {
		n += l.Size
	}
	return n
}

// countingReader counts what was read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// Open reads the archive's table of contents, its index, manifest and
// config, and checks that it is an OS image of this project for amd64.
func Open(r io.ReaderAt, size int64) (*Archive, error) {
	entries := map[string]span{} // file name in the archive -> where
	a := &Archive{blob: func(name string) (*io.SectionReader, error) {
		sp, ok := entries[name]
		if !ok {
			return nil, fmt.Errorf("%s: not in the archive", name)
		}
		return io.NewSectionReader(r, sp.off, sp.size), nil
	}}
	cr := &countingReader{r: io.NewSectionReader(r, 0, size)}
	tr := tar.NewReader(cr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("not an OCI image archive (a tar of an OCI image layout): %w", err)
		}
		if h.Typeflag == tar.TypeReg {
			// The data starts where the reader is now: right after the header.
			entries[path.Clean(strings.TrimPrefix(h.Name, "./"))] = span{off: cr.n, size: h.Size}
		}
	}
	var idx index
	if err := a.readJSON("index.json", "", &idx); err != nil {
		return nil, fmt.Errorf("not an OCI image archive: %w", err)
	}
	if err := a.resolve(idx); err != nil {
		return nil, err
	}
	return a, nil
}

// OpenBlobs opens the OS image whose manifest or index is target, reading
// blobs by digest with get (a content store's, such as system
// containerd's after a pull), and checks it as Open does.
func OpenBlobs(target Descriptor, get func(digest string) (io.ReaderAt, int64, error)) (*Archive, error) {
	a := &Archive{blob: func(name string) (*io.SectionReader, error) {
		rest, ok := strings.CutPrefix(name, "blobs/")
		alg, hex, ok2 := strings.Cut(rest, "/")
		if !ok || !ok2 {
			return nil, fmt.Errorf("%s: not a blob", name)
		}
		r, size, err := get(alg + ":" + hex)
		if err != nil {
			return nil, fmt.Errorf("blob %s: %w", short(alg+":"+hex), err)
		}
		return io.NewSectionReader(r, 0, size), nil
	}}
	if err := a.resolve(index{Manifests: []Descriptor{target}}); err != nil {
		return nil, err
	}
	return a, nil
}

// findManifest finds the linux/amd64 manifest of the index: one of its
// own, or one inside an index of platforms (a multi-arch image, as
// containerd exports one), which is then one of the image's Subjects.
func (a *Archive) findManifest(idx index) (*Descriptor, error) {
	for i, d := range idx.Manifests {
		if d.MediaType != mtManifest && d.MediaType != mtDockerMan || isSignatureRef(d) {
			continue
		}
		if d.Platform == nil || (d.Platform.Architecture == "amd64" && d.Platform.OS == "linux") {
			return &idx.Manifests[i], nil
		}
	}
	for _, d := range idx.Manifests {
		if d.MediaType != mtIndex && d.MediaType != "application/vnd.docker.distribution.manifest.list.v2+json" {
			continue
		}
		var inner index
		if err := a.readJSON(blobName(d.Digest), d.Digest, &inner); err != nil {
			return nil, fmt.Errorf("image index: %w", err)
		}
		for i, m := range inner.Manifests {
			if (m.MediaType == mtManifest || m.MediaType == mtDockerMan) && m.Platform != nil && m.Platform.Architecture == "amd64" && m.Platform.OS == "linux" {
				a.Subjects = append(a.Subjects, d.Digest)
				return &inner.Manifests[i], nil
			}
		}
	}
	return nil, nil
}

// resolve finds the linux/amd64 manifest from the index, reads it and the
// config, and checks that this is an OS image of this project whose
// layers are all there.
func (a *Archive) resolve(idx index) error {
	a.index = idx
	desc, err := a.findManifest(idx)
	if err != nil {
		return err
	}
	if desc == nil {
		return errors.New("the archive's index has no image manifest for linux/amd64")
	}
	var man manifest
	if err := a.readJSON(blobName(desc.Digest), desc.Digest, &man); err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	a.Digest = desc.Digest
	a.Subjects = append(a.Subjects, desc.Digest)
	if err := a.readJSON(blobName(man.Config.Digest), man.Config.Digest, &a.Config); err != nil {
		return fmt.Errorf("image config: %w", err)
	}
	if a.Config.Config.Labels[LabelOS] != "true" {
		return fmt.Errorf("not an OS image of this project: its config lacks the label %s=true (a service or application image?)", LabelOS)
	}
	if a.Version() == "" {
		return fmt.Errorf("OS image without a version: its config lacks the label %s", LabelVersion)
	}
	if a.Config.Architecture != "" && a.Config.Architecture != "amd64" {
		return fmt.Errorf("OS image for %s: this node is amd64", a.Config.Architecture)
	}
	for _, l := range man.Layers {
		switch l.MediaType {
		case mtLayerTar, mtLayerGz, mtDockerGz, "application/vnd.docker.image.rootfs.diff.tar":
		default:
			return fmt.Errorf("layer %s: media type %q is not a tar layer", short(l.Digest), l.MediaType)
		}
		r, err := a.blob(blobName(l.Digest))
		if err != nil {
			return fmt.Errorf("layer %s: %w", short(l.Digest), err)
		}
		if r.Size() != l.Size {
			return fmt.Errorf("layer %s: %d bytes in the image, the manifest says %d", short(l.Digest), r.Size(), l.Size)
		}
	}
	a.Layers = man.Layers
	return nil
}

func short(d string) string {
	if i := strings.IndexByte(d, ':'); i >= 0 && len(d) > i+13 {
		return d[:i+13]
	}
	return d
}

func blobName(digest string) string {
	alg, hex, _ := strings.Cut(digest, ":")
	return path.Join("blobs", alg, hex)
}

// readJSON reads a small JSON file of the archive, checking its digest when
// one is given.
func (a *Archive) readJSON(name, digest string, v any) error {
	r, err := a.blob(name)
	if err != nil {
		return err
	}
	if r.Size() > 4<<20 {
		return fmt.Errorf("%s: %d bytes: too big for JSON metadata", name, r.Size())
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if digest != "" {
		if err := checkDigest(digest, sha256.Sum256(b)); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return json.Unmarshal(b, v)
}

func checkDigest(want string, sum [32]byte) error {
	alg, hexWant, _ := strings.Cut(want, ":")
	if alg != "sha256" {
		return fmt.Errorf("digest %s: only sha256 is supported", want)
	}
	if got := hex.EncodeToString(sum[:]); got != hexWant {
		return fmt.Errorf("digest mismatch: the content is sha256:%s, the image says %s (a damaged or altered archive)", got, want)
	}
	return nil
}
