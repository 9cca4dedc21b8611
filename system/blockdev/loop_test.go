package blockdev

import (
	"os"
	"path/filepath"
	"testing"
)

// Needs root and /dev/loop-control, as the build and CI machines have.
func TestAttachLoopKeepsDeviceWhileOpen(t *testing.T) {
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		t.Fatalf("no /dev/loop-control on this machine: %v", err)
	}
	f := filepath.Join(t.TempDir(), "img")
	data := make([]byte, 1<<20)
	copy(data, "rosos-loop")
	if err := os.WriteFile(f, data, 0o644); err != nil {
		t.Fatal(err)
	}
	path, dev, err := AttachLoop(f, true)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	b := make([]byte, 10)
	if _, err := dev.ReadAt(b, 0); err != nil || string(b) != "rosos-loop" {
		t.Fatalf("read %s: %q %v", path, b, err)
	}
	if _, err := dev.Write([]byte("x")); err == nil {
		t.Fatal("a read-only loop device took a write")
	}
}
