package pid1

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
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

func TestBaseReserve(t *testing.T) {
	dir := t.TempDir()
	meminfo := filepath.Join(dir, "meminfo")
	minFree := filepath.Join(dir, "min_free_kbytes")
	os.WriteFile(meminfo, []byte("MemTotal:        2014508 kB\nMemFree:         1456676 kB\n"), 0o644)
	for _, tc := range []struct{ have, from, to int }{
		{45056, 45056, 5677}, // khugepaged's raise on a 2 GiB node
		{4000, 4000, 4000},   // already lower (a user's sysctl): left
		{5677, 5677, 5677},
	} {
		os.WriteFile(minFree, []byte(fmt.Sprintf("%d\n", tc.have)), 0o644)
		from, to, err := baseReserve(meminfo, minFree)
		if err != nil || from != tc.from || to != tc.to {
			t.Errorf("have %d: %d -> %d, %v; want %d -> %d", tc.have, from, to, err, tc.from, tc.to)
		}
		b, _ := os.ReadFile(minFree)
		if got := strings.TrimSpace(string(b)); got != fmt.Sprint(tc.to) {
			t.Errorf("have %d: file says %s, want %d", tc.have, got, tc.to)
		}
	}
	os.WriteFile(meminfo, []byte("MemFree: 1 kB\n"), 0o644)
	os.WriteFile(minFree, []byte("45056\n"), 0o644)
	if _, _, err := baseReserve(meminfo, minFree); err == nil || !strings.Contains(err.Error(), "no MemTotal") {
		t.Errorf("meminfo without MemTotal: err %v", err)
	}
}
