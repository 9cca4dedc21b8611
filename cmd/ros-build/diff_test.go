package main

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

type file struct {
	name, body, link string
	typ              byte
}

func writeTar(t *testing.T, p string, files []file) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Typeflag: f.typ, Mode: 0o644, Linkname: f.link, Size: int64(len(f.body))}
		if f.typ == tar.TypeDir {
			h.Mode, h.Size = 0o755, 0
		}
		if f.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if f.typ == tar.TypeReg {
			tw.Write([]byte(f.body))
		}
	}
	tw.Close()
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func names(t *testing.T, b []byte) []string {
	var out []string
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, h.Name)
	}
	sort.Strings(out)
	return out
}

func TestWriteDiff(t *testing.T) {
	dir := t.TempDir()
	base, full := filepath.Join(dir, "base.tar"), filepath.Join(dir, "full.tar")
	writeTar(t, base, []file{
		{name: "./etc/", typ: tar.TypeDir},
		{name: "./etc/passwd", body: "root", typ: tar.TypeReg},
		{name: "./etc/same", body: "x", typ: tar.TypeReg},
		{name: "./gone/", typ: tar.TypeDir},
		{name: "./gone/file", body: "y", typ: tar.TypeReg},
		{name: "./etc/old", body: "z", typ: tar.TypeReg},
		{name: "./bin/", typ: tar.TypeDir},
		{name: "./bin/a", body: "prog", typ: tar.TypeReg},
		{name: "./bin/b", link: "./bin/a", typ: tar.TypeLink},
		{name: "./bin/sh", link: "dash", typ: tar.TypeSymlink},
	})
	writeTar(t, full, []file{
		{name: "./etc/", typ: tar.TypeDir},
		{name: "./etc/passwd", body: "root\nrancher", typ: tar.TypeReg},
		{name: "./etc/same", body: "x", typ: tar.TypeReg},
		{name: "./bin/", typ: tar.TypeDir},
		{name: "./bin/a", body: "prog", typ: tar.TypeReg},
		{name: "./bin/b", link: "./bin/a", typ: tar.TypeLink},
		{name: "./bin/c", link: "./bin/a", typ: tar.TypeLink}, // new link to an unchanged file
		{name: "./bin/sh", link: "bash", typ: tar.TypeSymlink},
		{name: "./new/", typ: tar.TypeDir},
		{name: "./new/f", body: "n", typ: tar.TypeReg},
	})
	var out bytes.Buffer
	kept, removed, err := writeDiff(base, full, &out)
	if err != nil {
		t.Fatal(err)
	}
	got := names(t, out.Bytes())
	want := []string{".wh.gone", "bin/a", "bin/b", "bin/c", "bin/sh", "etc/.wh.old", "etc/passwd", "new/", "new/f"}
	if len(got) != len(want) {
		t.Fatalf("layer has %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("layer has %v, want %v", got, want)
		}
	}
	if kept != 7 || removed != 2 {
		t.Fatalf("kept %d removed %d, want 7 and 2", kept, removed)
	}
}
