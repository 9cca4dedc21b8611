package grubenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
)

// bump adds 1 to the block's counter n times, one locked update each, as
// PID 1 and an upgrade each read, change and write the block.
func bump(p string, n int) error {
	for range n {
		err := UpdateFile(p, func(env Env, exists bool) (bool, error) {
			if !exists {
				return false, fmt.Errorf("%s: no block", p)
			}
			c, _ := strconv.Atoi(env["count"])
			env["count"] = strconv.Itoa(c + 1)
			return true, nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// TestUpdateHelper is a writer in another process for TestUpdateRace; it
// does nothing when run on its own.
func TestUpdateHelper(t *testing.T) {
	p := os.Getenv("ROS_GRUBENV")
	if p == "" {
		return
	}
	LockPath = os.Getenv("ROS_GRUBENV_LOCK")
	n, _ := strconv.Atoi(os.Getenv("ROS_GRUBENV_N"))
	if err := bump(p, n); err != nil {
		t.Fatal(err)
	}
}

// TestUpdateRace: three processes and three goroutines change one block
// at once; no change is lost.
func TestUpdateRace(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "grubenv")
	LockPath = filepath.Join(dir, "grubenv.lock")
	if err := Write(p, NewSlots(3)); err != nil {
		t.Fatal(err)
	}
	const n = 40
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for w := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestUpdateHelper$", "-test.count=1")
		cmd.Env = append(os.Environ(), "ROS_GRUBENV="+p, "ROS_GRUBENV_LOCK="+LockPath, fmt.Sprintf("ROS_GRUBENV_N=%d", n))
		wg.Go(func() {
			if out, err := cmd.CombinedOutput(); err != nil {
				errs <- fmt.Errorf("writer process %d: %w\n%s", w, err, out)
			}
		})
		wg.Go(func() {
			if err := bump(p, n); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	env, err := Read(p)
	if err != nil {
		t.Fatal(err)
	}
	if env["count"] != strconv.Itoa(6*n) || env[KeyActive] != "A" {
		t.Fatalf("count %s, want %d (changes were lost); active %q", env["count"], 6*n, env[KeyActive])
	}
}
