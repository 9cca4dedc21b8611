// Package config holds the OS configuration types (RancherOS v1's
// cloud-config keys) and loads them from layered YAML documents. It imports
// nothing from the rest of the tree.
package config

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
	"golang.org/x/sys/unix"
)

// Layer is one source of configuration and its document.
type Layer struct {
	Name string // a path or a datasource's name, for messages
	Doc  map[string]any
}

// ParseDoc parses one cloud-config document. An empty document is an empty map.
func ParseDoc(name string, b []byte) (Layer, error) {
	var doc map[string]any
	dec := yaml.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&doc); err != nil && err.Error() != "EOF" {
		return Layer{}, fmt.Errorf("config: %s: not valid YAML: %w", name, err)
	}
	if doc == nil {
		doc = map[string]any{}
	}
	// Check the keys and types now, so that a bad document is refused on
	// its own rather than spoiling the merge of the good ones.
	if err := Check(doc); err != nil {
		return Layer{}, fmt.Errorf("config: %s: %w", name, err)
	}
	c, err := decode(name, doc)
	if err != nil {
		return Layer{}, err
	}
	if err := c.Validate(); err != nil {
		return Layer{}, fmt.Errorf("config: %s: %w", name, err)
	}
	return Layer{Name: name, Doc: doc}, nil
}

// ReadFile parses the document at path.
func ReadFile(path string) (Layer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Layer{}, fmt.Errorf("config: %w", err)
	}
	return ParseDoc(path, b)
}

// ReadDir parses every *.yml document in dir, in name order. Documents that
// fail are returned as errors beside the good ones: one bad document must not
// keep the others from applying.
func ReadDir(dir string) ([]Layer, []error) {
	paths, _ := filepath.Glob(filepath.Join(dir, "*.yml"))
	sort.Strings(paths)
	var out []Layer
	var errs []error
	for _, p := range paths {
		l, err := ReadFile(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, l)
	}
	return out, errs
}

// Merge merges layers, later wins: maps merge key by key, anything else
// (lists included) is replaced whole.
func Merge(layers ...Layer) (Config, error) {
	return decode("merged config", MergeDocs(layers...))
}

func mergeMaps(dst, src map[string]any) map[string]any {
	out := make(map[string]any, len(dst)+len(src))
	for k, v := range dst {
		out[k] = v
	}
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := out[k].(map[string]any); ok {
				out[k] = mergeMaps(dm, sm)
				continue
			}
		}
		out[k] = v
	}
	return out
}

func decode(name string, doc map[string]any) (Config, error) {
	b, err := yaml.Marshal(doc)
	if err != nil {
		return Config{}, fmt.Errorf("config: %s: %w", name, err)
	}
	var c Config
	if err := yaml.Unmarshal(b, &c); err != nil {
		return Config{}, fmt.Errorf("config: %s: %s", name, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	return c, nil
}

// WriteAtomic writes b to path through a temporary file, fsync and rename,
// so that a power cut leaves the old file or the new one, never half of one.
func WriteAtomic(path string, b []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(tmp.Name()) }() // gone already after the rename
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// UpdateFile is the one way to change a stored config document: it takes
// an exclusive lock (path + ".lock", flock) held from the read to the
// rename, reads the document (a missing file is an empty one), changes it
// with f, checks the result (keys, types, values) and writes it
// atomically. Writers in any process take turns, so none loses another's
// change. f returns false to leave the file as it is (a dry run); if f
// fails, nothing is written.
func UpdateFile(path string, f func(doc map[string]any) (write bool, err error)) error {
	unlock, err := lockFile(path + ".lock")
	if err != nil {
		return err
	}
	defer unlock()
	doc := map[string]any{}
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		l, err := ParseDoc(path, b)
		if err != nil {
			return fmt.Errorf("%w (fix or remove the file; nothing was changed)", err)
		}
		doc = l.Doc
	case !os.IsNotExist(err):
		return fmt.Errorf("config: %w", err)
	}
	write, err := f(doc)
	if err != nil || !write {
		return err
	}
	if err := Check(doc); err != nil {
		return fmt.Errorf("config: %s: %w", path, err)
	}
	c, err := decode(path, doc)
	if err != nil {
		return err
	}
	if err := c.Validate(); err != nil {
		return fmt.Errorf("config: %s: %w", path, err)
	}
	out, err := yaml.Marshal(doc)
	if err != nil {
		return err
	}
	return WriteAtomic(path, append([]byte("#cloud-config\n"), out...), 0o600)
}

// lockFile takes an exclusive flock on path (made if missing, root-only)
// and returns its release.
func lockFile(path string) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("config: lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("config: lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}
