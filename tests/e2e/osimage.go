//go:build e2e

package e2e

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// OSImage is the OS image archive of the image under test (make os-image).
func OSImage(t *testing.T) string { return builtFile(t, "ROS_OS_IMAGE", "make os-image") }

// File is a file a derived image adds.
type File struct {
	Name string
	Mode int64
	Body string
}

// DeriveOSImage writes a new OS image archive: the one at base with a layer
// of files on top and the version label set to version, as a user's
// Dockerfile FROM the OS image would make. The base's blobs are copied as
// they are.
func DeriveOSImage(t *testing.T, base, version string, files []File) string {
	t.Helper()
	in, err := os.Open(base)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	// Pass 1: the index, manifest and config.
	blobs := map[string][]byte{}
	tr := tar.NewReader(in)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Size < 1<<20 {
			b, _ := io.ReadAll(tr)
			blobs[path.Clean(h.Name)] = b
		}
	}
	var idx struct {
		SchemaVersion int              `json:"schemaVersion"`
		MediaType     string           `json:"mediaType,omitempty"`
		Manifests     []map[string]any `json:"manifests"`
	}
	must(t, json.Unmarshal(blobs["index.json"], &idx))
	var man map[string]any
	must(t, json.Unmarshal(blobs[blobPath(idx.Manifests[0]["digest"].(string))], &man))
	cfgDesc := man["config"].(map[string]any)
	var cfg map[string]any
	must(t, json.Unmarshal(blobs[blobPath(cfgDesc["digest"].(string))], &cfg))

	// The new layer.
	var lb bytes.Buffer
	tw := tar.NewWriter(&lb)
	for _, f := range files {
		mode := f.Mode
		if mode == 0 {
			mode = 0o644
		}
		must(t, tw.WriteHeader(&tar.Header{Name: f.Name, Mode: mode, Size: int64(len(f.Body)), Typeflag: tar.TypeReg}))
		tw.Write([]byte(f.Body))
	}
	must(t, tw.Close())
	layer := lb.Bytes()
	ld := digest(layer)

	cfg["config"].(map[string]any)["Labels"].(map[string]any)["org.opencontainers.image.version"] = version
	rootfs := cfg["rootfs"].(map[string]any)
	rootfs["diff_ids"] = append(rootfs["diff_ids"].([]any), ld)
	cb, _ := json.Marshal(cfg)
	man["config"] = map[string]any{"mediaType": cfgDesc["mediaType"], "digest": digest(cb), "size": len(cb)}
	man["layers"] = append(man["layers"].([]any), map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld, "size": len(layer)})
	mb, _ := json.Marshal(man)
	md := idx.Manifests[0]
	md["digest"], md["size"] = digest(mb), len(mb)
	idx.Manifests = []map[string]any{md}
	ib, _ := json.Marshal(idx)

	// Pass 2: copy the base's entries but its index, then add the new ones.
	out := filepath.Join(t.TempDir(), "os-"+version+".oci.tar")
	of, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer of.Close()
	ow := tar.NewWriter(of)
	in.Seek(0, io.SeekStart)
	tr = tar.NewReader(in)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		must(t, err)
		if path.Clean(h.Name) == "index.json" {
			continue
		}
		must(t, ow.WriteHeader(h))
		_, err = io.Copy(ow, tr)
		must(t, err)
	}
	for name, b := range map[string][]byte{blobPath(ld): layer, blobPath(digest(cb)): cb, blobPath(digest(mb)): mb, "index.json": ib} {
		must(t, ow.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}))
		ow.Write(b)
	}
	must(t, ow.Close())
	return out
}

func blobPath(d string) string { return "blobs/sha256/" + d[len("sha256:"):] }

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// OSRelease is /etc/os-release (and /usr/share/ros/os-release) of version.
func OSRelease(version string) []File {
	body := fmt.Sprintf("NAME=\"rosos\"\nID=rosos\nID_LIKE=rancheros\nVERSION=%q\nVERSION_ID=%q\nPRETTY_NAME=\"rosos %s\"\n", version, version, version)
	return []File{{Name: "etc/os-release", Body: body}, {Name: "usr/share/ros/os-release", Body: body}}
}

// ServeRegistry serves an in-memory registry on a free port of 127.0.0.1
// (the guest's 10.0.2.2) holding the OS image archive at repo:tag, and
// returns the port.
func ServeRegistry(t *testing.T, repoTag, archivePath string) int {
	t.Helper()
	dir := t.TempDir()
	run(t, "tar", "-xf", archivePath, "-C", dir)
	idx, err := layout.ImageIndexFromPath(dir)
	must(t, err)
	im, err := idx.IndexManifest()
	must(t, err)
	img, err := idx.Image(im.Manifests[0].Digest)
	must(t, err)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	srv := &http.Server{Handler: registry.New(registry.Logger(log.New(io.Discard, "", 0)))}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	port := l.Addr().(*net.TCPAddr).Port
	tag, err := name.NewTag(fmt.Sprintf("127.0.0.1:%d/%s", port, repoTag), name.Insecure)
	must(t, err)
	must(t, remote.Write(tag, img))
	return port
}
