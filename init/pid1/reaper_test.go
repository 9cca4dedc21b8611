package pid1

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

var (
	reaperOnce sync.Once
	reaper     *Reaper
)

// testReaper is one reaper for the whole test binary: like PID 1, a process
// may have only one.
func testReaper() *Reaper {
	reaperOnce.Do(func() { reaper = NewReaper() })
	return reaper
}

// The test process becomes a child subreaper, so orphans land on it as they
// land on PID 1 in the OS.
func TestReaperReapsOwnChildrenAndOrphans(t *testing.T) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Fatalf("PR_SET_CHILD_SUBREAPER: %v", err)
	}
	r := testReaper()

	// A child that exits at once: its status must reach us, not be lost.
	for i := 0; i < 20; i++ {
		w, err := r.Start(exec.Command("sh", "-c", "exit 3"))
		if err != nil {
			t.Fatal(err)
		}
		select {
		case ws := <-w:
			if ws.ExitStatus() != 3 {
				t.Fatalf("exit status %d, want 3", ws.ExitStatus())
			}
		case <-time.After(10 * time.Second):
			t.Fatal("exit status never arrived")
		}
	}

	// A double fork: the grandchild is orphaned and must be reaped too.
	// (Through the reaper: exec.Cmd.Wait would race it for the status.)
	pidFile := t.TempDir() + "/pid"
	w, err := r.Start(exec.Command("sh", "-c", "sleep 0.3 & echo $! > "+pidFile))
	if err != nil {
		t.Fatal(err)
	}
	<-w
	out, _ := os.ReadFile(pidFile)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	if pid == 0 {
		t.Fatalf("no pid in %q", out)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			break // gone: reaped
		}
		if time.Now().After(deadline) {
			t.Fatalf("orphan %d still there: %s", pid, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r.Orphans() < 1 {
		t.Fatalf("reaper counted %d orphans, want at least 1", r.Orphans())
	}
}
