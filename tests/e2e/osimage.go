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
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/rosos/ros/system/osimage"
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
	r := NewRegistry(t, "", "")
	r.Push(repoTag, archivePath)
	return r.Port
}

// Registry is an in-memory registry on a free port of 127.0.0.1 (the
// guest's 10.0.2.2), which may want a user name and password.
type Registry struct {
	t          *testing.T
	Port       int
	user, pass string
	Refused    atomic.Int32 // requests refused for want of credentials
}

// NewRegistry serves a registry; with user set it wants basic auth.
func NewRegistry(t *testing.T, user, pass string) *Registry {
	t.Helper()
	r := &Registry{t: t, user: user, pass: pass}
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if user != "" {
			if u, p, ok := req.BasicAuth(); !ok || u != user || p != pass {
				r.Refused.Add(1)
				w.Header().Set("WWW-Authenticate", `Basic realm="e2e"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
		}
		reg.ServeHTTP(w, req)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	r.Port = l.Addr().(*net.TCPAddr).Port
	return r
}

// Push puts the OS image of the archive at repo:tag, and its signatures
// (if the archive has them) at repo:sha256-HEX.sig, as cosign does.
func (r *Registry) Push(repoTag, archivePath string) {
	t := r.t
	t.Helper()
	dir := t.TempDir()
	run(t, "tar", "-xf", archivePath, "-C", dir)
	idx, err := layout.ImageIndexFromPath(dir)
	must(t, err)
	im, err := idx.IndexManifest()
	must(t, err)
	opts := []remote.Option{}
	if r.user != "" {
		opts = append(opts, remote.WithAuth(&authn.Basic{Username: r.user, Password: r.pass}))
	}
	repo, _, _ := strings.Cut(repoTag, ":")
	for _, d := range im.Manifests {
		tagName := repoTag
		if ref := d.Annotations["org.opencontainers.image.ref.name"]; strings.HasSuffix(ref, ".sig") {
			tagName = repo + ":" + ref
		}
		img, err := idx.Image(d.Digest)
		must(t, err)
		tag, err := name.NewTag(fmt.Sprintf("127.0.0.1:%d/%s", r.Port, tagName), name.Insecure)
		must(t, err)
		must(t, remote.Write(tag, img, opts...))
	}
}

// TinyOSImage writes an OS image archive of one layer holding entries:
// labelled as an OS image of version, not bootable. ros os upgrade checks
// it whole (signature, entries) before it looks for a kernel, so it
// serves for what must be refused.
func TinyOSImage(t *testing.T, version string, entries ...tar.Header) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range entries {
		body := strings.Repeat("x", int(h.Size))
		must(t, tw.WriteHeader(&h))
		tw.Write([]byte(body))
	}
	must(t, tw.Close())
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err := mutate.AppendLayers(img, static.NewLayer(buf.Bytes(), types.OCIUncompressedLayer))
	must(t, err)
	cf, err := img.ConfigFile()
	must(t, err)
	cf.Architecture, cf.OS = "amd64", "linux"
	cf.Config.Labels = map[string]string{"io.rosos.os": "true", "org.opencontainers.image.version": version}
	img, err = mutate.ConfigFile(img, cf)
	must(t, err)
	dir := t.TempDir()
	p, err := layout.Write(filepath.Join(dir, "layout"), empty.Index)
	must(t, err)
	must(t, p.AppendImage(img))
	out := filepath.Join(dir, "os-"+version+".oci.tar")
	run(t, "tar", "-C", filepath.Join(dir, "layout"), "-cf", out, ".")
	return out
}

// SignOSImage signs the OS image archive at p with the PEM private key.
func SignOSImage(t *testing.T, p string, key []byte) {
	t.Helper()
	k, err := osimage.ParsePrivateKey(key)
	must(t, err)
	_, err = osimage.SignArchive(p, k, "docker.io/rosos/os")
	must(t, err)
}
