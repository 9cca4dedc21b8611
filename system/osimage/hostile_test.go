package osimage

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sys/unix"
)

// entry is one tar entry of a hand-made layer.
type entry struct {
	h    tar.Header
	body string
}

func reg(name, body string) entry {
	return entry{tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body))}, body}
}
func symlink(name, target string) entry {
	return entry{h: tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target, Mode: 0o777}}
}
func hardlink(name, target string) entry {
	return entry{h: tar.Header{Name: name, Typeflag: tar.TypeLink, Linkname: target, Mode: 0o644}}
}
func dirEntry(name string) entry {
	return entry{h: tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o755}}
}

func tarOf(t testing.TB, es ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range es {
		h := e.h
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func rawLayer(b []byte) v1.Layer { return static.NewLayer(b, types.OCIUncompressedLayer) }

// outsideDir is a directory beside the slot that a hostile image aims at,
// holding passwd; unchanged reports whether it still holds exactly that.
func outsideDir(t *testing.T) (string, func() bool) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "passwd"), []byte("root\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, func() bool {
		ents, _ := os.ReadDir(dir)
		b, err := os.ReadFile(filepath.Join(dir, "passwd"))
		return len(ents) == 1 && err == nil && string(b) == "root\n"
	}
}

// TestHostileImagesAreRefused unpacks images built to write outside the
// slot, or to carry what an OS image must not: each is refused before
// anything is written, with a reason, and the directory they aim at is
// untouched. Then the same images are unpacked with the up-front check
// skipped (as if the blobs changed after it): the write is refused too,
// and still nothing outside the slot is touched.
func TestHostileImagesAreRefused(t *testing.T) {
	outside, unchanged := outsideDir(t)
	truncated := tarOf(t, reg("etc/os-release", strings.Repeat("x", 4096)), reg("etc/other", "y"))
	truncated = truncated[:1024+512]
	cases := []struct {
		name   string
		layers [][]entry
		raw    []byte // a layer given as bytes instead
		want   string
	}{
		{name: "symlink escape", want: "goes through the symlink /x -> " + outside,
			layers: [][]entry{{symlink("x", outside), reg("x/evil", "pwned")}}},
		{name: "symlink escape across layers", want: "goes through the symlink /x -> " + outside,
			layers: [][]entry{{symlink("x", outside)}, {reg("x/passwd", "pwned")}}},
		{name: "relative symlink escape", want: "goes through the symlink /etc/x -> ../../../../../../../..",
			layers: [][]entry{{dirEntry("etc/"), symlink("etc/x", "../../../../../../../.."+outside)}, {reg("etc/x/passwd", "pwned")}}},
		{name: "dot-dot name", want: `has a ".."`,
			layers: [][]entry{{reg("../../../../../../../.."+outside+"/evil", "pwned")}}},
		{name: "dot-dot inside a name", want: `has a ".."`,
			layers: [][]entry{{dirEntry("etc/"), reg("etc/../../evil", "pwned")}}},
		{name: "whiteout through a symlink", want: "goes through the symlink /x -> " + outside,
			layers: [][]entry{{symlink("x", outside)}, {reg("x/.wh.passwd", "")}}},
		{name: "opaque whiteout through a symlink", want: "goes through the symlink /x -> " + outside,
			layers: [][]entry{{symlink("x", outside)}, {reg("x/.wh..wh..opq", "")}}},
		{name: "hard link out of the root", want: `has a ".."`,
			layers: [][]entry{{hardlink("shadow", "../../../../../../../.."+outside+"/passwd")}}},
		{name: "hard link to an absolute path", want: "not a file this image wrote before it",
			layers: [][]entry{{hardlink("shadow", outside+"/passwd")}}},
		{name: "hard link through a symlink", want: "goes through the symlink /x -> " + outside,
			layers: [][]entry{{symlink("x", outside), hardlink("shadow", "x/passwd")}}},
		{name: "hard link to a symlink", want: "not a file this image wrote before it",
			layers: [][]entry{{symlink("x", outside+"/passwd"), hardlink("shadow", "x")}}},
		{name: "device node", want: "a device node (8:0)",
			layers: [][]entry{{dirEntry("dev/"), {h: tar.Header{Name: "dev/sda", Typeflag: tar.TypeBlock, Devmajor: 8, Mode: 0o660}}}}},
		{name: "character device", want: "a device node (1:1)",
			layers: [][]entry{{{h: tar.Header{Name: "mem", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 1, Mode: 0o660}}}}},
		{name: "bad whiteout", want: "not a valid whiteout",
			layers: [][]entry{{reg(".wh.", "")}}},
		{name: "truncated tar stream", want: "not a whole tar stream", raw: truncated},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var layers []v1.Layer
			for _, es := range c.layers {
				layers = append(layers, rawLayer(tarOf(t, es...)))
			}
			if c.raw != nil {
				layers = append(layers, rawLayer(c.raw))
			}
			a, err := open(t, archive(t, osLabels, layers...))
			if err != nil {
				t.Fatal(err)
			}
			slot := filepath.Join(t.TempDir(), "B.new")
			err = a.Unpack(context.Background(), slot, nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("unpack: %v; want an error with %q", err, c.want)
			}
			t.Logf("refused: %v", err)
			if _, err := os.Lstat(slot); !os.IsNotExist(err) {
				t.Errorf("the slot was written before the image was refused: %v", err)
			}
			if !unchanged() {
				t.Fatalf("the directory outside the slot was changed")
			}
			// The write's own checks, as if the blobs changed after Verify.
			a.verified = true
			if err := a.Unpack(context.Background(), slot, nil); err == nil {
				t.Errorf("unpack without the up-front check: no error")
			}
			if !unchanged() {
				t.Fatalf("the directory outside the slot was changed by the write")
			}
		})
	}
}

// TestDamagedImagesWriteNothing: a layer whose bytes do not match its
// digest, and blobs cut short, are refused before the slot is created.
func TestDamagedImagesWriteNothing(t *testing.T) {
	body := strings.Repeat("A", 8192)
	p := archive(t, osLabels, rawLayer(tarOf(t, reg("etc/os-release", "VERSION_ID=v9\n"))), rawLayer(tarOf(t, reg("f", body))))
	b, _ := os.ReadFile(p)
	i := bytes.Index(b, []byte(body))
	b[i+5000] = 'B' // in the second layer: the first is fine and must not be written either
	damaged := filepath.Join(t.TempDir(), "damaged.tar")
	os.WriteFile(damaged, b, 0o644)
	a, err := open(t, damaged)
	if err != nil {
		t.Fatal(err)
	}
	slot := filepath.Join(t.TempDir(), "B.new")
	if err := a.Unpack(context.Background(), slot, nil); err == nil || !strings.Contains(err.Error(), "digest mismatch") {
		t.Fatalf("damaged layer: %v", err)
	}
	if _, err := os.Lstat(slot); !os.IsNotExist(err) {
		t.Errorf("the slot was written: %v", err)
	}

	// The archive cut short, in the middle of the second layer.
	cut := filepath.Join(t.TempDir(), "cut.tar")
	os.WriteFile(cut, b[:i+100], 0o644)
	if _, err := open(t, cut); err == nil || !strings.Contains(err.Error(), "not an OCI image archive") {
		t.Errorf("archive cut short: %v", err)
	}

	// A blob cut short in a content store.
	target, get := blobsOf(t, p, "")
	d, _ := rawLayer(tarOf(t, reg("f", body))).Digest()
	short := func(dg string) (io.ReaderAt, int64, error) {
		r, n, err := get(dg)
		if dg == d.String() {
			n /= 2
		}
		return r, n, err
	}
	if _, err := OpenBlobs(target, short); err == nil || !strings.Contains(err.Error(), "the manifest says") {
		t.Errorf("blob cut short: %v", err)
	}
}

// TestUnpackKeepsLinksInsideAndXattrs: what a real root file system has
// (absolute symlinks, a whiteout of a symlink, extended attributes such as
// file capabilities) is unpacked as it is, and the symlink's target is
// left alone.
func TestUnpackKeepsLinksInsideAndXattrs(t *testing.T) {
	outside, unchanged := outsideDir(t)
	f := reg("usr/bin/ping", "ELF")
	// cap_net_raw, permitted and effective (VFS_CAP_REVISION_2).
	capNetRaw := string([]byte{1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.h.PAXRecords = map[string]string{"SCHILY.xattr.user.rosos": "kept", "SCHILY.xattr.security.capability": capNetRaw}
	l1 := tarOf(t, dirEntry("usr/"), dirEntry("usr/bin/"), f, reg("usr/bin/sh1", "ELF"), symlink("bin", "usr/bin"), symlink("sh", "/usr/bin/ping"),
		symlink("x", outside), symlink("y", outside+"/passwd"))
	l2 := tarOf(t, reg(".wh.x", ""), reg(".wh.y", ""), hardlink("usr/bin/sh2", "usr/bin/sh1"))
	a, err := open(t, archive(t, osLabels, rawLayer(l1), rawLayer(l2)))
	if err != nil {
		t.Fatal(err)
	}
	slot := filepath.Join(t.TempDir(), "B.new")
	if err := a.Unpack(context.Background(), slot, nil); err != nil {
		t.Fatal(err)
	}
	if !unchanged() {
		t.Fatal("a whiteout of a symlink changed its target")
	}
	for _, p := range []string{"x", "y"} {
		if _, err := os.Lstat(filepath.Join(slot, p)); !os.IsNotExist(err) {
			t.Errorf("%s: whited out, still there: %v", p, err)
		}
	}
	if l, err := os.Readlink(filepath.Join(slot, "sh")); err != nil || l != "/usr/bin/ping" {
		t.Errorf("sh -> %q, %v", l, err)
	}
	for attr, want := range map[string]string{"user.rosos": "kept", "security.capability": capNetRaw} {
		buf := make([]byte, 64)
		n, err := unix.Lgetxattr(filepath.Join(slot, "usr/bin/ping"), attr, buf)
		if err != nil || string(buf[:n]) != want {
			t.Errorf("xattr %s = %q, %v; want %q", attr, buf[:max(n, 0)], err, want)
		}
	}
	ents, _ := os.ReadDir(slot)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"bin", "sh", "usr"}) {
		t.Errorf("slot holds %v", names)
	}
}

// TestWhiteoutOfAnUnlistedDirectory: a directory a layer never lists (only
// files under it) and a higher layer whites out takes its symlinks with
// it: what the next layer writes there is not refused.
func TestWhiteoutOfAnUnlistedDirectory(t *testing.T) {
	outside, unchanged := outsideDir(t)
	l1 := tarOf(t, symlink("a/b/link", outside), reg("a/b/f", "x"))
	l2 := tarOf(t, reg(".wh.a", ""), reg("a/b/link/file", "inside"))
	a, err := open(t, archive(t, osLabels, rawLayer(l1), rawLayer(l2)))
	if err != nil {
		t.Fatal(err)
	}
	slot := filepath.Join(t.TempDir(), "B.new")
	if err := a.Unpack(context.Background(), slot, nil); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(slot, "a/b/link/file")); err != nil || string(b) != "inside" {
		t.Errorf("a/b/link/file = %q, %v", b, err)
	}
	if !unchanged() {
		t.Error("the directory outside the slot was changed")
	}
}
