package host

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestPrepareHome(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown needs root")
	}
	home := filepath.Join(t.TempDir(), "home", "rancher")
	for i := 0; i < 2; i++ { // made, then put right again
		if err := PrepareHome(home, 1100); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(home)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid != 1100 || st.Gid != 1100 || fi.Mode().Perm() != 0o750 {
			t.Fatalf("home: uid %d gid %d mode %v, want 1100 1100 0750", st.Uid, st.Gid, fi.Mode().Perm())
		}
		if err := os.Chmod(home, 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(home, 0, 0); err != nil {
			t.Fatal(err)
		}
	}
}
