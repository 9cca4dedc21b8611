package osimage

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

type file struct {
	name, body string
	typ        byte
	link       string
}

func layerOf(t *testing.T, files []file) v1.Layer {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: 0o644, Typeflag: f.typ, Linkname: f.link}
		if f.typ == 0 {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.body))
		}
		if f.typ == tar.TypeDir {
			h.Mode = 0o755
		}
		tw.WriteHeader(h)
		tw.Write([]byte(f.body))
	}
	tw.Close()
	return static.NewLayer(buf.Bytes(), types.OCIUncompressedLayer)
}

// archive writes an OCI archive of an image with the labels and layers.
func archive(t testing.TB, labels map[string]string, layers ...v1.Layer) string {
	t.Helper()
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err := mutate.AppendLayers(img, layers...)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf.Architecture, cf.OS = "amd64", "linux"
	cf.Config.Labels = labels
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p, err := layout.Write(filepath.Join(dir, "layout"), empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "os.tar")
	f, _ := os.Create(out)
	tw := tar.NewWriter(f)
	root := filepath.Join(dir, "layout")
	filepath.Walk(root, func(path string, fi os.FileInfo, err error) error {
		if fi.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		b, _ := os.ReadFile(path)
		tw.WriteHeader(&tar.Header{Name: rel, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg})
		tw.Write(b)
		return nil
	})
	tw.Close()
	f.Close()
	return out
}

func open(t testing.TB, p string) (*Archive, error) {
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	fi, _ := f.Stat()
	return Open(f, fi.Size())
}

var osLabels = map[string]string{LabelOS: "true", LabelVersion: "v9"}

func TestUnpackLayersWithWhiteouts(t *testing.T) {
	base := layerOf(t, []file{{name: "etc/", typ: tar.TypeDir}, {name: "etc/os-release", body: "VERSION_ID=v1\n"},
		{name: "gone", body: "x"}, {name: "opq/", typ: tar.TypeDir}, {name: "opq/old", body: "o"},
		{name: "link", typ: tar.TypeSymlink, link: "etc/os-release"}, {name: "hard", typ: tar.TypeLink, link: "etc/os-release"}})
	top := layerOf(t, []file{{name: "etc/os-release", body: "VERSION_ID=v9\n"}, {name: ".wh.gone"},
		{name: "opq/.wh..wh..opq"}, {name: "opq/new", body: "n"}})
	a, err := open(t, archive(t, osLabels, base, top))
	if err != nil {
		t.Fatal(err)
	}
	if a.Version() != "v9" || len(a.Layers) != 2 {
		t.Fatalf("version %q layers %d", a.Version(), len(a.Layers))
	}
	dir := t.TempDir()
	var last int64
	if err := a.Unpack(context.Background(), dir, func(done, total int64) { last = done }); err != nil {
		t.Fatal(err)
	}
	if last != a.Size() {
		t.Errorf("progress ended at %d of %d", last, a.Size())
	}
	for p, want := range map[string]string{"etc/os-release": "VERSION_ID=v9\n", "link": "VERSION_ID=v9\n", "hard": "VERSION_ID=v1\n", "opq/new": "n"} {
		if b, err := os.ReadFile(filepath.Join(dir, p)); err != nil || string(b) != want {
			t.Errorf("%s = %q, %v; want %q", p, b, err, want)
		}
	}
	for _, p := range []string{"gone", "opq/old"} {
		if _, err := os.Lstat(filepath.Join(dir, p)); !os.IsNotExist(err) {
			t.Errorf("%s should be gone: %v", p, err)
		}
	}
}

func TestRefusesOtherImages(t *testing.T) {
	l := layerOf(t, []file{{name: "x", body: "y"}})
	if _, err := open(t, archive(t, map[string]string{"a": "b"}, l)); err == nil || !strings.Contains(err.Error(), "not an OS image of this project") {
		t.Fatalf("service image: %v", err)
	}
	p := filepath.Join(t.TempDir(), "junk.tar")
	os.WriteFile(p, []byte("not a tar at all, just words"), 0o644)
	if _, err := open(t, p); err == nil || !strings.Contains(err.Error(), "not an OCI image archive") {
		t.Fatalf("junk: %v", err)
	}
}

func TestDamagedLayerIsRefused(t *testing.T) {
	l := layerOf(t, []file{{name: "f", body: strings.Repeat("A", 4096)}})
	p := archive(t, osLabels, l)
	b, _ := os.ReadFile(p)
	i := bytes.Index(b, []byte(strings.Repeat("A", 4096)))
	b[i+100] = 'B' // one byte of the layer's content
	os.WriteFile(p, b, 0o644)
	a, err := open(t, p)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Unpack(context.Background(), t.TempDir(), nil); err == nil || !strings.Contains(err.Error(), "digest mismatch") {
		t.Fatalf("damaged layer: %v", err)
	}
}

// blobsOf opens the image layout an archive was made from as a content
// store: blobs by digest, the index's first manifest as the target.
func blobsOf(t *testing.T, archivePath string, missing string) (Descriptor, func(string) (io.ReaderAt, int64, error)) {
	t.Helper()
	root := filepath.Join(filepath.Dir(archivePath), "layout")
	b, err := os.ReadFile(filepath.Join(root, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var idx index
	if err := json.Unmarshal(b, &idx); err != nil || len(idx.Manifests) != 1 {
		t.Fatalf("index.json: %v %s", err, b)
	}
	return idx.Manifests[0], func(digest string) (io.ReaderAt, int64, error) {
		if digest == missing {
			return nil, 0, errors.New("not found")
		}
		alg, hex, _ := strings.Cut(digest, ":")
		f, err := os.Open(filepath.Join(root, "blobs", alg, hex))
		if err != nil {
			return nil, 0, err
		}
		t.Cleanup(func() { f.Close() })
		fi, _ := f.Stat()
		return f, fi.Size(), nil
	}
}

func TestOpenBlobs(t *testing.T) {
	layer := layerOf(t, []file{{name: "etc/", typ: tar.TypeDir}, {name: "etc/os-release", body: "VERSION_ID=v9\n"}})
	p := archive(t, osLabels, layer)
	target, get := blobsOf(t, p, "")
	a, err := OpenBlobs(target, get)
	if err != nil {
		t.Fatal(err)
	}
	if a.Version() != "v9" || a.Digest != target.Digest {
		t.Errorf("version %q digest %s, want v9 %s", a.Version(), a.Digest, target.Digest)
	}
	dir := t.TempDir()
	if err := a.Unpack(context.Background(), dir, nil); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "etc/os-release")); err != nil || string(b) != "VERSION_ID=v9\n" {
		t.Errorf("etc/os-release = %q, %v", b, err)
	}
	// A layer the store lacks is named.
	d, _ := layer.Digest()
	target, get = blobsOf(t, p, d.String())
	if _, err := OpenBlobs(target, get); err == nil || !strings.Contains(err.Error(), d.String()[:19]) {
		t.Errorf("a missing layer: %v", err)
	}
	// Not an OS image.
	target, get = blobsOf(t, archive(t, map[string]string{}, layer), "")
	if _, err := OpenBlobs(target, get); err == nil || !strings.Contains(err.Error(), "not an OS image") {
		t.Errorf("an image without the OS label: %v", err)
	}
}
