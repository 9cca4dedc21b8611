package blockdev

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// mkfs makes a real file system image with the host's mkfs tools, the same
// ones the image build uses.
func mkfs(t *testing.T, dir, name string, sizeMB int, args ...string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, int64(sizeMB)<<20); err != nil {
		t.Fatal(err)
	}
	args = append(args, path)
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %v: %s (run `make deps`)", args, err, out)
	}
	return path
}

func TestProbeRealFileSystems(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		path, typ, label string
	}{
		{mkfs(t, dir, "state", 8, "mkfs.ext4", "-q", "-L", "RANCHER_STATE"), "ext4", "RANCHER_STATE"},
		{mkfs(t, dir, "esp", 33, "mkfs.vfat", "-F", "32", "-n", "RANCHER_EFI"), "vfat", "RANCHER_EFI"},
		{mkfs(t, dir, "seed", 2, "mkfs.vfat", "-n", "cidata"), "vfat", "cidata"},
	}
	for _, c := range cases {
		typ, label, err := ProbeFile(c.path)
		if err != nil || typ != c.typ || label != c.label {
			t.Errorf("%s: got %q %q %v, want %q %q", filepath.Base(c.path), typ, label, err, c.typ, c.label)
		}
	}
}

func TestProbeISO(t *testing.T) {
	geniso, err := exec.LookPath("xorriso")
	if err != nil {
		t.Fatal("xorriso is not installed: run `make deps`")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "user-data"), []byte("#cloud-config\n"), 0o644)
	iso := filepath.Join(dir, "seed.iso")
	if out, err := exec.Command(geniso, "-as", "mkisofs", "-quiet", "-V", "cidata", "-o", iso, src).CombinedOutput(); err != nil {
		t.Fatalf("xorriso: %v: %s", err, out)
	}
	typ, label, err := ProbeFile(iso)
	if err != nil || typ != "iso9660" || label != "cidata" {
		t.Fatalf("got %q %q %v", typ, label, err)
	}
}

func TestProbeUnknown(t *testing.T) {
	p := filepath.Join(t.TempDir(), "zero")
	os.WriteFile(p, make([]byte, 64<<10), 0o644)
	if _, _, err := ProbeFile(p); !errors.Is(err, ErrUnknown) {
		t.Fatalf("err = %v, want ErrUnknown", err)
	}
}

func TestListAndFindLabel(t *testing.T) {
	dir := t.TempDir()
	sys := filepath.Join(dir, "sys")
	dev := filepath.Join(dir, "dev")
	os.MkdirAll(dev, 0o755)
	for _, n := range []string{"vda1", "vda2", "vdb", "ram0"} {
		os.MkdirAll(filepath.Join(sys, n), 0o755)
	}
	mkfs(t, dev, "vda1", 33, "mkfs.vfat", "-F", "32", "-n", "RANCHER_EFI")
	mkfs(t, dev, "vda2", 8, "mkfs.ext4", "-q", "-L", "RANCHER_STATE")
	os.WriteFile(filepath.Join(dev, "vdb"), make([]byte, 4096), 0o644)
	os.WriteFile(filepath.Join(sys, "vda2", "uevent"), []byte("MAJOR=254\nDEVNAME=vda2\nPARTNAME=RANCHER_STATE_LONG_NAME\n"), 0o644)

	devs, err := List(sys, dev)
	if err != nil {
		t.Fatal(err)
	}
	if len(devs) != 2 {
		t.Fatalf("List = %v, want the two formatted devices", devs)
	}
	d, err := FindLabel(devs, "RANCHER_STATE")
	if err != nil || d.Path != filepath.Join(dev, "vda2") {
		t.Fatalf("FindLabel = %v, %v", d, err)
	}
	if d, err := FindLabel(devs, "RANCHER_STATE_LONG_NAME"); err != nil || d.Path != filepath.Join(dev, "vda2") {
		t.Fatalf("FindLabel by GPT name = %v, %v", d, err)
	}
	if _, err := FindLabel(devs, "RANCHER_PERSISTENT"); err == nil || !strings.Contains(err.Error(), "RANCHER_PERSISTENT") {
		t.Fatalf("missing label: err = %v", err)
	}
	dup := append(devs, Device{Path: "/dev/sdz1", Type: "ext4", Label: "RANCHER_STATE"})
	if _, err := FindLabel(dup, "RANCHER_STATE"); err == nil || !strings.Contains(err.Error(), "2 devices") {
		t.Fatalf("duplicate label: err = %v", err)
	}
	if _, err := WaitLabel(sys, dev, "NOPE", 0); err == nil || !strings.Contains(err.Error(), "seen:") {
		t.Fatalf("WaitLabel: err = %v, want what was seen", err)
	}
}
