package main

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
)

// entry is what decides whether a path of the service's tree is the same
// as in the base: its type, mode, owner, content or link target.
type entry struct {
	typ        byte
	mode       int64
	uid, gid   int
	size       int64
	sum        [32]byte
	link       string
	devMaj     int64
	devMin     int64
	hardTarget string // for hard links: the (clean) path linked to
}

func cleanName(n string) string {
	n = path.Clean("/" + n)
	return strings.TrimPrefix(n, "/")
}

// openTar opens a tar file, gzip-compressed or not.
func openTar(p string) (*tar.Reader, io.Closer, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, nil, err
	}
	var magic [2]byte
	if _, err := io.ReadFull(f, magic[:]); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w", p, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, nil, err
	}
	if magic == [2]byte{0x1f, 0x8b} {
		z, err := gzip.NewReader(f)
		if err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("%s: %w", p, err)
		}
		return tar.NewReader(z), f, nil
	}
	return tar.NewReader(f), f, nil
}

// index reads every entry of a tar.
func index(p string) (map[string]entry, []string, error) {
	tr, c, err := openTar(p)
	if err != nil {
		return nil, nil, err
	}
	defer c.Close()
	m := map[string]entry{}
	var order []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return m, order, nil
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", p, err)
		}
		name := cleanName(h.Name)
		if name == "" || name == "." {
			continue
		}
		e := entry{typ: h.Typeflag, mode: h.Mode & 07777, uid: h.Uid, gid: h.Gid, size: h.Size,
			link: h.Linkname, devMaj: h.Devmajor, devMin: h.Devminor}
		if h.Typeflag == tar.TypeLink {
			e.hardTarget = cleanName(h.Linkname)
		}
		if h.Typeflag == tar.TypeReg {
			s := sha256.New()
			if _, err := io.Copy(s, tr); err != nil {
				return nil, nil, fmt.Errorf("%s: %s: %w", p, name, err)
			}
			copy(e.sum[:], s.Sum(nil))
		}
		if _, dup := m[name]; !dup {
			order = append(order, name)
		}
		m[name] = e
	}
}

// writeDiff writes to out a layer that, applied on top of base, gives full:
// the entries of full that differ from base, and a whiteout for each path
// of base that full does not have. Hard links whose target is written are
// written too, and the reverse, so no link points into a lower layer.
func writeDiff(base, full string, out io.Writer) (kept, removed int, err error) {
	bm, border, err := index(base)
	if err != nil {
		return 0, 0, err
	}
	fm, _, err := index(full)
	if err != nil {
		return 0, 0, err
	}
	emit := map[string]bool{}
	for name, e := range fm {
		if b, ok := bm[name]; !ok || b != e {
			emit[name] = true
		}
	}
	// Keep hard-link groups whole.
	for changed := true; changed; {
		changed = false
		for name, e := range fm {
			if e.typ != tar.TypeLink {
				continue
			}
			if emit[name] != emit[e.hardTarget] {
				emit[name], emit[e.hardTarget] = true, true
				changed = true
			}
		}
	}
	tw := tar.NewWriter(out)
	// Whiteouts first: only for the topmost removed path.
	for _, name := range border {
		if _, ok := fm[name]; ok {
			continue
		}
		if dir := path.Dir(name); dir != "." {
			if _, parentKept := fm[dir]; !parentKept {
				continue // the parent is gone as a whole
			}
		}
		wh := path.Join(path.Dir(name), ".wh."+path.Base(name))
		if err := tw.WriteHeader(&tar.Header{Name: wh, Typeflag: tar.TypeReg, Mode: 0o644}); err != nil {
			return 0, 0, err
		}
		removed++
	}
	tr, c, err := openTar(full)
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %w", full, err)
		}
		name := cleanName(h.Name)
		if !emit[name] {
			continue
		}
		h.Name = name
		if h.Typeflag == tar.TypeDir {
			h.Name += "/"
		}
		if h.Typeflag == tar.TypeLink {
			h.Linkname = cleanName(h.Linkname)
		}
		if err := tw.WriteHeader(h); err != nil {
			return 0, 0, fmt.Errorf("%s: %w", name, err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := io.Copy(tw, tr); err != nil {
				return 0, 0, fmt.Errorf("%s: %w", name, err)
			}
		}
		kept++
	}
	return kept, removed, tw.Close()
}
