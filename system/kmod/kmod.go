// Package kmod loads Linux kernel modules without modprobe: it reads the
// modules.dep, modules.softdep and modules.builtin that depmod writes, resolves
// a module's dependencies in load order and loads each with finit_module(2).
package kmod

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Index is what depmod knows about one kernel's modules.
type Index struct {
	dir     string              // /lib/modules/<version>
	paths   map[string]string   // module name -> path relative to dir
	deps    map[string][]string // module name -> direct dependencies (names)
	softPre map[string][]string // module name -> softdep "pre:" names
	builtin map[string]bool
	aliases []alias // modules.alias, in file order
}

// alias is one line of modules.alias: a glob pattern and the module it names.
type alias struct{ pattern, module string }

// compressedExts are the endings of compressed module files (Debian's
// kernels since 6.x ship .ko.xz).
var compressedExts = []string{".ko.xz", ".ko.zst", ".ko.gz"}

// Name returns the canonical module name of a path or name: "kernel/fs/ext4/ext4.ko"
// and "ext4" give "ext4"; dashes become underscores as the kernel does.
func Name(s string) string {
	s = filepath.Base(s)
	for _, ext := range compressedExts {
		s = strings.TrimSuffix(s, ext)
	}
	s = strings.TrimSuffix(s, ".ko")
	return strings.ReplaceAll(s, "-", "_")
}

// IsModuleFile reports whether path names a module file, compressed or not.
func IsModuleFile(path string) bool {
	return strings.HasSuffix(path, ".ko") || isCompressed(path)
}

func isCompressed(path string) bool {
	for _, ext := range compressedExts {
		if strings.HasSuffix(path, ext) {
			return true
		}
	}
	return false
}

// Open reads the index of the modules in dir (/lib/modules/<version>).
func Open(dir string) (*Index, error) {
	dep, err := os.Open(filepath.Join(dir, "modules.dep"))
	if err != nil {
		return nil, fmt.Errorf("kmod: %w", err)
	}
	defer dep.Close()
	idx, err := Parse(dep)
	if err != nil {
		return nil, fmt.Errorf("kmod: %s: %w", filepath.Join(dir, "modules.dep"), err)
	}
	idx.dir = dir
	if f, err := os.Open(filepath.Join(dir, "modules.softdep")); err == nil {
		err = idx.parseSoftdep(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("kmod: modules.softdep: %w", err)
		}
	}
	if f, err := os.Open(filepath.Join(dir, "modules.alias")); err == nil {
		idx.parseAliases(f)
		f.Close()
	}
	if f, err := os.Open(filepath.Join(dir, "modules.builtin")); err == nil {
		s := bufio.NewScanner(f)
		for s.Scan() {
			if l := strings.TrimSpace(s.Text()); l != "" {
				idx.builtin[Name(l)] = true
			}
		}
		f.Close()
	}
	return idx, nil
}

// Parse reads a modules.dep document.
func Parse(r io.Reader) (*Index, error) {
	idx := &Index{
		paths:   map[string]string{},
		deps:    map[string][]string{},
		softPre: map[string][]string{},
		builtin: map[string]bool{},
	}
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 64*1024), 1024*1024)
	line := 0
	for s.Scan() {
		line++
		l := strings.TrimSpace(s.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		path, rest, ok := strings.Cut(l, ":")
		if !ok {
			return nil, fmt.Errorf("line %d: want \"path: deps...\", got %q", line, l)
		}
		name := Name(path)
		idx.paths[name] = path
		for _, d := range strings.Fields(rest) {
			idx.deps[name] = append(idx.deps[name], Name(d))
		}
	}
	return idx, s.Err()
}

func (x *Index) parseSoftdep(r io.Reader) error {
	s := bufio.NewScanner(r)
	for s.Scan() {
		f := strings.Fields(s.Text())
		if len(f) < 3 || f[0] != "softdep" {
			continue
		}
		mod := Name(f[1])
		pre := false
		for _, w := range f[2:] {
			switch w {
			case "pre:":
				pre = true
			case "post:":
				pre = false
			default:
				if pre {
					x.softPre[mod] = append(x.softPre[mod], Name(w))
				}
			}
		}
	}
	return s.Err()
}

func (x *Index) parseAliases(r io.Reader) {
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 64*1024), 1024*1024)
	for s.Scan() {
		f := strings.Fields(s.Text())
		if len(f) == 3 && f[0] == "alias" {
			x.aliases = append(x.aliases, alias{pattern: f[1], module: Name(f[2])})
		}
	}
}

// Lookup turns what the kernel or a user asks for (a module name or an
// alias such as "net-pf-10" or "fs-overlay") into module names.
func (x *Index) Lookup(name string) []string {
	if x.Has(name) {
		return []string{Name(name)}
	}
	var out []string
	seen := map[string]bool{}
	for _, a := range x.aliases {
		if ok, _ := path.Match(a.pattern, name); ok && !seen[a.module] {
			seen[a.module] = true
			out = append(out, a.module)
		}
	}
	return out
}

// Has reports whether the index knows the module (as a file or built in).
func (x *Index) Has(name string) bool {
	n := Name(name)
	_, ok := x.paths[n]
	return ok || x.builtin[n]
}

// Path is the module's file relative to the index's directory.
func (x *Index) Path(name string) (string, bool) {
	p, ok := x.paths[Name(name)]
	return p, ok
}

// Resolve returns the modules to load for names, dependencies first, each
// once. Built-in modules are left out. Soft "pre" dependencies are included
// when the index has them and skipped silently otherwise (they are optional).
func (x *Index) Resolve(names ...string) ([]string, error) {
	var order []string
	state := map[string]int{} // 0 unseen, 1 visiting, 2 done
	var visit func(n string, chain []string, soft bool) error
	visit = func(n string, chain []string, soft bool) error {
		switch state[n] {
		case 2:
			return nil
		case 1:
			return fmt.Errorf("dependency cycle: %s -> %s", strings.Join(chain, " -> "), n)
		}
		if x.builtin[n] {
			state[n] = 2
			return nil
		}
		if _, ok := x.paths[n]; !ok {
			if soft {
				state[n] = 2
				return nil
			}
			if len(chain) > 0 {
				return fmt.Errorf("module %s (needed by %s) not found", n, chain[len(chain)-1])
			}
			return fmt.Errorf("module %s not found", n)
		}
		state[n] = 1
		chain = append(chain, n)
		for _, p := range x.softPre[n] {
			if err := visit(p, chain, true); err != nil {
				return err
			}
		}
		for _, d := range x.deps[n] {
			if err := visit(d, chain, false); err != nil {
				return err
			}
		}
		state[n] = 2
		order = append(order, n)
		return nil
	}
	for _, n := range names {
		if err := visit(Name(n), nil, false); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// Load loads the named modules and their dependencies. A module the kernel
// already has is not an error, and neither is one whose driver finds nothing
// to drive (ENODEV: crc32c_intel on a CPU without SSE4.2). Other failures do
// not stop the others from loading; they are returned together. It returns
// the names it loaded.
//
// Modules load side by side: each starts as soon as the modules it depends
// on (and its soft "pre" dependencies) are done, so a module's decompression
// and its driver's probe overlap with the others'.
func (x *Index) Load(names ...string) ([]string, error) {
	return x.load(names, func(n string) error {
		if Loaded(n) {
			return unix.EEXIST
		}
		return loadFile(filepath.Join(x.dir, x.paths[n]))
	})
}

// load runs loadOne for every module that names resolve to, each once it
// may: after the modules it depends on have finished (loaded or failed). A
// failed dependency does not hold the others back; their own load reports
// what is missing. loadOne returns EEXIST for a module already there.
func (x *Index) load(names []string, loadOne func(name string) error) ([]string, error) {
	var errs []error
	var order []string
	for _, n := range names {
		o, err := x.Resolve(n)
		if err != nil {
			errs = append(errs, fmt.Errorf("kmod: %w", err))
			continue
		}
		order = append(order, o...)
	}
	done := map[string]chan struct{}{}
	var unique []string
	for _, n := range order {
		if done[n] == nil {
			done[n] = make(chan struct{})
			unique = append(unique, n)
		}
	}
	type result struct {
		name   string
		loaded bool
		err    error
	}
	results := make(chan result, len(unique))
	for _, n := range unique {
		go func() {
			defer close(done[n])
			for _, d := range append(append([]string(nil), x.softPre[n]...), x.deps[n]...) {
				if ch := done[d]; ch != nil {
					<-ch
				}
			}
			err := loadOne(n)
			switch {
			case errors.Is(err, unix.EEXIST), errors.Is(err, unix.ENODEV):
				results <- result{name: n}
			case err != nil:
				results <- result{name: n, err: fmt.Errorf("kmod: load %s (%s): %w", n, filepath.Join(x.dir, x.paths[n]), err)}
			default:
				results <- result{name: n, loaded: true}
			}
		}()
	}
	got := map[string]result{}
	for range unique {
		r := <-results
		got[r.name] = r
	}
	// Report in dependency order, whatever order they finished in.
	var loaded []string
	for _, n := range unique {
		if r := got[n]; r.err != nil {
			errs = append(errs, r.err)
		} else if r.loaded {
			loaded = append(loaded, n)
		}
	}
	return loaded, errors.Join(errs...)
}

// Loaded reports whether the running kernel has module name (loaded or built in).
func Loaded(name string) bool {
	_, err := os.Stat(filepath.Join("/sys/module", Name(name)))
	return err == nil
}

// loadFlags are finit_module's flags for the module file at path: a
// compressed module (Debian's .ko.xz) is decompressed by the kernel itself,
// which needs CONFIG_MODULE_DECOMPRESS.
func loadFlags(path string) int {
	if isCompressed(path) {
		return unix.MODULE_INIT_COMPRESSED_FILE
	}
	return 0
}

func loadFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.FinitModule(int(f.Fd()), "", loadFlags(path))
}
