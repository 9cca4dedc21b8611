package osimage

import (
	"archive/tar"
	"fmt"
	"path"
	"strings"
)

// entryRules checks the entries of an OS image's layers, in order, for
// what could write outside the slot being unpacked or put something there
// an OS image has no business carrying. It tracks the symlinks and
// regular files the layers made so far, so that a later entry (in the
// same layer or a higher one) cannot write, delete or link through a
// symlink, and a hard link can only point at a file of the image.
//
// Refused:
//   - a name or link target with a ".." component;
//   - an entry, whiteout or hard link whose path goes through a symlink
//     the image made (x -> /etc, then x/passwd or x/.wh.passwd);
//   - a hard link to anything but a regular file the image wrote before;
//   - character and block devices (/dev is the kernel's devtmpfs);
//   - entry types other than directories, files, symlinks, hard links and
//     FIFOs, and malformed whiteouts.
type entryRules struct {
	links map[string]string // path -> symlink target
	files map[string]bool   // regular files, for hard links
	dirs  map[string]bool   // directories: only their removal has a subtree to forget
}

func newEntryRules() *entryRules {
	return &entryRules{links: map[string]string{}, files: map[string]bool{}, dirs: map[string]bool{}}
}

// cleanName turns an entry's name or hard link target into a path
// relative to the root ("" for the root itself), refusing "..".
func cleanName(name string) (string, error) {
	for _, c := range strings.Split(name, "/") {
		if c == ".." {
			return "", fmt.Errorf("%q: the name has a \"..\", which would reach outside the new slot", name)
		}
	}
	p := strings.TrimPrefix(path.Clean("/"+name), "/")
	return p, nil
}

// throughLink names the symlink among p's parents, if any.
func (r *entryRules) throughLink(p string) (string, bool) {
	for i := 0; i < len(p); i++ {
		if p[i] != '/' {
			continue
		}
		if t, ok := r.links[p[:i]]; ok {
			return fmt.Sprintf("/%s -> %s", p[:i], t), true
		}
	}
	return "", false
}

// forget drops what the rules know of p (with self) and, when p is a
// directory, of everything under it: a whiteout, or an entry that replaces
// p. Only a directory's removal walks the maps, so the check stays linear
// in the entries for a root file system's thousands of files and links.
func (r *entryRules) forget(p string, self bool) {
	if self {
		delete(r.links, p)
		delete(r.files, p)
	}
	if !r.dirs[p] && p != "" {
		return
	}
	if self {
		delete(r.dirs, p)
	}
	prefix := p + "/"
	if p == "" {
		prefix = ""
	}
	for _, m := range []map[string]bool{r.files, r.dirs} {
		for k := range m {
			if strings.HasPrefix(k, prefix) {
				delete(m, k)
			}
		}
	}
	for k := range r.links {
		if strings.HasPrefix(k, prefix) {
			delete(r.links, k)
		}
	}
}

func (r *entryRules) check(h *tar.Header) error {
	p, err := cleanName(h.Name)
	if err != nil {
		return fmt.Errorf("entry %w", err)
	}
	if link, ok := r.throughLink(p); ok {
		return fmt.Errorf("entry %q goes through the symlink %s: refused, it would write outside the new slot", h.Name, link)
	}
	dir, base := path.Split(p)
	dir = strings.TrimSuffix(dir, "/")
	// Parents are directories, whether the layer lists them or not.
	for i := 0; i < len(dir); i++ {
		if dir[i] == '/' {
			r.dirs[dir[:i]] = true
		}
	}
	if dir != "" {
		r.dirs[dir] = true
	}
	if strings.HasPrefix(base, ".wh.") {
		if base == ".wh..wh..opq" {
			r.forget(dir, false)
			return nil
		}
		orig := strings.TrimPrefix(base, ".wh.")
		if orig == "" || orig == "." || strings.HasPrefix(orig, ".wh.") {
			return fmt.Errorf("entry %q: not a valid whiteout", h.Name)
		}
		r.forget(path.Join(dir, orig), true)
		return nil
	}
	if p == "" {
		if h.Typeflag != tar.TypeDir {
			return fmt.Errorf("entry %q: the root of the image must be a directory", h.Name)
		}
		return nil
	}
	switch h.Typeflag {
	case tar.TypeDir:
		delete(r.links, p)
		delete(r.files, p)
		r.dirs[p] = true
	case tar.TypeReg, '\x00': // \x00: a regular file of old tars (TypeRegA)
		r.forget(p, true)
		r.files[p] = true
	case tar.TypeSymlink:
		if h.Linkname == "" {
			return fmt.Errorf("entry %q: a symlink without a target", h.Name)
		}
		r.forget(p, true)
		r.links[p] = h.Linkname
	case tar.TypeLink:
		t, err := cleanName(h.Linkname)
		if err != nil {
			return fmt.Errorf("entry %q: hard link to %w", h.Name, err)
		}
		if link, ok := r.throughLink(t); ok {
			return fmt.Errorf("entry %q: hard link to %q goes through the symlink %s: refused", h.Name, h.Linkname, link)
		}
		if !r.files[t] {
			return fmt.Errorf("entry %q: hard link to %q, which is not a file this image wrote before it: refused", h.Name, h.Linkname)
		}
		r.forget(p, true)
		r.files[p] = true
	case tar.TypeFifo:
		r.forget(p, true)
	case tar.TypeChar, tar.TypeBlock:
		return fmt.Errorf("entry %q: a device node (%d:%d); an OS image carries none (/dev is the kernel's devtmpfs): refused", h.Name, h.Devmajor, h.Devminor)
	default:
		return fmt.Errorf("entry %q: tar entry type %q is not supported in an OS image", h.Name, h.Typeflag)
	}
	return nil
}
