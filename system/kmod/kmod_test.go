package kmod

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const dep = `kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko
kernel/lib/crc16.ko:
kernel/fs/mbcache.ko:
kernel/fs/jbd2/jbd2.ko:
kernel/fs/squashfs/squashfs.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/virtio/virtio.ko:
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/crypto/crc32c_generic.ko:
kernel/fs/nls/nls_iso8859-1.ko:
`

func index(t *testing.T) *Index {
	t.Helper()
	dir := t.TempDir()
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("modules.dep", dep)
	write("modules.softdep", "# comment\nsoftdep ext4 pre: crc32c crc32c_missing post: nothing\n")
	write("modules.builtin", "kernel/fs/fat/fat.ko\n")
	x, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func TestResolveOrdersDependenciesFirst(t *testing.T) {
	x := index(t)
	got, err := x.Resolve("virtio_blk", "ext4", "virtio-pci")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"virtio", "virtio_ring", "virtio_blk", "crc16", "mbcache", "jbd2", "ext4",
		"virtio_pci_modern_dev", "virtio_pci"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Resolve = %v, want %v", got, want)
	}
}

func TestSoftdepPreIsLoadedWhenPresent(t *testing.T) {
	x := index(t)
	// crc32c is not in the index under that name: only crc32c_generic is; the
	// optional soft dependency is skipped without error.
	x.paths["crc32c"] = "kernel/crypto/crc32c.ko"
	got, err := x.Resolve("ext4")
	if err != nil {
		t.Fatal(err)
	}
	if got[0] != "crc32c" || got[len(got)-1] != "ext4" {
		t.Fatalf("Resolve = %v: want crc32c first and ext4 last", got)
	}
}

func TestBuiltinAndMissing(t *testing.T) {
	x := index(t)
	got, err := x.Resolve("fat")
	if err != nil || len(got) != 0 {
		t.Fatalf("builtin fat: got %v, %v; want nothing to load", got, err)
	}
	if !x.Has("fat") || !x.Has("nls-iso8859-1") || x.Has("nope") {
		t.Fatal("Has gives wrong answers")
	}
	_, err = x.Resolve("nope")
	if err == nil || !strings.Contains(err.Error(), "module nope not found") {
		t.Fatalf("missing module: err = %v", err)
	}
}

func TestMissingDependencyNamesItsUser(t *testing.T) {
	x, err := Parse(strings.NewReader("kernel/a.ko: kernel/b.ko\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = x.Resolve("a")
	if err == nil || !strings.Contains(err.Error(), "module b (needed by a) not found") {
		t.Fatalf("err = %v", err)
	}
}

func TestCycleIsAnError(t *testing.T) {
	x, err := Parse(strings.NewReader("a.ko: b.ko\nb.ko: a.ko\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := x.Resolve("a"); err == nil || !strings.Contains(err.Error(), "cycle") {
		t.Fatalf("err = %v, want a cycle error", err)
	}
}

func TestParseRejectsGarbage(t *testing.T) {
	if _, err := Parse(strings.NewReader("no colon here\n")); err == nil {
		t.Fatal("want an error for a line without a colon")
	}
}

func TestName(t *testing.T) {
	for in, want := range map[string]string{
		"kernel/fs/nls/nls_iso8859-1.ko": "nls_iso8859_1",
		"virtio-pci":                     "virtio_pci",
		"x.ko.xz":                        "x",
	} {
		if got := Name(in); got != want {
			t.Errorf("Name(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLookupAliases(t *testing.T) {
	idx, err := Parse(strings.NewReader("kernel/fs/overlayfs/overlay.ko: \nkernel/net/ipv6/ipv6.ko:\n"))
	if err != nil {
		t.Fatal(err)
	}
	idx.parseAliases(strings.NewReader("alias fs-overlay overlay\nalias net-pf-10 ipv6\nalias pci:v00001AF4d00001000sv*sd*bc*sc*i* virtio_net\n"))
	for _, c := range []struct {
		in   string
		want string
	}{
		{"overlay", "overlay"},
		{"fs-overlay", "overlay"},
		{"net-pf-10", "ipv6"},
		{"pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00", "virtio_net"},
		{"nothing-here", ""},
	} {
		got := strings.Join(idx.Lookup(c.in), ",")
		if got != c.want {
			t.Errorf("Lookup(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestCompressedModulesAreDecompressedByTheKernel(t *testing.T) {
	for path, want := range map[string]int{
		"/lib/modules/6.12/kernel/fs/ext4/ext4.ko.xz":     unix.MODULE_INIT_COMPRESSED_FILE,
		"/lib/modules/6.12/kernel/fs/ext4/ext4.ko.zst":    unix.MODULE_INIT_COMPRESSED_FILE,
		"/lib/modules/6.1/kernel/fs/ext4/ext4.ko":         0,
		"/lib/modules/6.1/kernel/fs/xz.ko/not-a-module.x": 0,
	} {
		if got := loadFlags(path); got != want {
			t.Errorf("loadFlags(%s) = %d, want %d", path, got, want)
		}
	}
}

// TestLoadSideBySide: every module loads once, after what it depends on;
// modules with nothing between them are in flight together; a failure is
// reported and does not stop the rest.
func TestLoadSideBySide(t *testing.T) {
	x := index(t)
	var mu sync.Mutex
	finished := map[string]bool{}
	calls := map[string]int{}
	inFlight, most := 0, 0
	// Leaves wait until another module is in flight too (or give up after
	// a second), so a loader that runs one at a time shows up as most == 1.
	both := make(chan struct{})
	var once sync.Once
	load := func(n string) error {
		mu.Lock()
		calls[n]++
		for _, d := range x.deps[n] {
			if !finished[d] {
				t.Errorf("%s loads before its dependency %s finished", n, d)
			}
		}
		inFlight++
		if inFlight > most {
			most = inFlight
		}
		if inFlight >= 2 {
			once.Do(func() { close(both) })
		}
		mu.Unlock()
		select {
		case <-both:
		case <-time.After(time.Second):
		}
		mu.Lock()
		inFlight--
		finished[n] = true
		mu.Unlock()
		switch n {
		case "squashfs":
			return unix.ENOEXEC
		case "crc16":
			return unix.EEXIST // already there: not loaded, not an error
		}
		return nil
	}
	loaded, err := x.load([]string{"ext4", "virtio_blk", "virtio_pci", "squashfs"}, load)
	if err == nil || !strings.Contains(err.Error(), "load squashfs") {
		t.Errorf("err = %v, want the squashfs failure", err)
	}
	want := []string{"mbcache", "jbd2", "ext4", "virtio", "virtio_ring", "virtio_blk", "virtio_pci_modern_dev", "virtio_pci"}
	if !reflect.DeepEqual(loaded, want) {
		t.Errorf("loaded %v, want %v", loaded, want)
	}
	for n, c := range calls {
		if c != 1 {
			t.Errorf("%s loaded %d times", n, c)
		}
	}
	if most < 2 {
		t.Errorf("at most %d module in flight: want independent modules side by side", most)
	}
}
