package pid1

import (
	"os"
	"path/filepath"
	"testing"
)

func TestHugePagesOnRequest(t *testing.T) {
	dir := t.TempDir()
	enabled := filepath.Join(dir, "enabled")
	cmdline := filepath.Join(dir, "cmdline")
	for _, tc := range []struct {
		cmdline string
		set     bool
		want    string
	}{
		{"ros.slot=A console=ttyS0\n", true, "madvise"},
		{"ros.slot=A transparent_hugepage=always\n", false, "always [madvise] never"},
	} {
		os.WriteFile(enabled, []byte("always [madvise] never"), 0o644)
		os.WriteFile(cmdline, []byte(tc.cmdline), 0o644)
		set, err := hugePagesOnRequest(cmdline, enabled)
		if err != nil || set != tc.set {
			t.Errorf("%q: set %v, err %v; want set %v", tc.cmdline, set, err, tc.set)
		}
		if b, _ := os.ReadFile(enabled); string(b) != tc.want {
			t.Errorf("%q: enabled is %q, want %q", tc.cmdline, b, tc.want)
		}
	}
	// A kernel without transparent huge pages: nothing to do.
	if set, err := hugePagesOnRequest(cmdline, filepath.Join(dir, "none")); err != nil || set {
		t.Errorf("no THP: set %v, err %v", set, err)
	}
}
