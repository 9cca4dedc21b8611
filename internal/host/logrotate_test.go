package host

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRotateLogs(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "svc.log")
	small := filepath.Join(dir, "small.log")
	os.WriteFile(small, []byte("x\n"), 0o644)
	for round := 1; round <= 4; round++ {
		os.WriteFile(p, []byte(strings.Repeat(string(rune('a'+round)), 100)), 0o644)
		if err := RotateLogs(dir, 50, 3); err != nil {
			t.Fatal(err)
		}
	}
	if fi, _ := os.Stat(p); fi.Size() != 0 {
		t.Fatalf("svc.log is %d bytes after rotation, want 0", fi.Size())
	}
	for i, want := range map[int]string{1: "e", 2: "d", 3: "c"} {
		b, err := os.ReadFile(p + "." + string(rune('0'+i)))
		if err != nil || b[0] != want[0] {
			t.Errorf("svc.log.%d: %q %v, want %s...", i, b, err, want)
		}
	}
	if _, err := os.Stat(p + ".4"); err == nil {
		t.Error("svc.log.4 exists: only 3 copies should be kept")
	}
	if b, _ := os.ReadFile(small); string(b) != "x\n" {
		t.Error("a log under the limit was touched")
	}
}
