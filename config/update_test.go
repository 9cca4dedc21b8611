package config

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
)

// updates sets n keys rancher.environment.W<who>_<i> in the file at p,
// one UpdateFile each.
func updates(p, who string, n int) error {
	for i := range n {
		err := UpdateFile(p, func(doc map[string]any) (bool, error) {
			return true, Set(doc, fmt.Sprintf("rancher.environment.W%s_%d", who, i), "x")
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// TestUpdateFileHelper is a writer in another process for
// TestUpdateFileRace; it does nothing when run on its own.
func TestUpdateFileHelper(t *testing.T) {
	p, who := os.Getenv("ROS_UPDATE_FILE"), os.Getenv("ROS_UPDATE_WHO")
	if p == "" {
		return
	}
	n, _ := strconv.Atoi(os.Getenv("ROS_UPDATE_N"))
	if err := updates(p, who, n); err != nil {
		t.Fatal(err)
	}
}

// TestUpdateFileRace: writers in three processes and three goroutines
// change one file at once, each its own keys; every key of every writer
// is in the file at the end (no writer overwrote another's change).
func TestUpdateFileRace(t *testing.T) {
	p := filepath.Join(t.TempDir(), "cloud-config.yml")
	const n = 30
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for w := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestUpdateFileHelper$", "-test.count=1")
		cmd.Env = append(os.Environ(), "ROS_UPDATE_FILE="+p, fmt.Sprintf("ROS_UPDATE_WHO=p%d", w), fmt.Sprintf("ROS_UPDATE_N=%d", n))
		wg.Go(func() {
			if out, err := cmd.CombinedOutput(); err != nil {
				errs <- fmt.Errorf("writer process %d: %w\n%s", w, err, out)
			}
		})
		wg.Go(func() {
			if err := updates(p, fmt.Sprintf("g%d", w), n); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	l, err := ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Merge(l)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(c.Rancher.Environment); got != 6*n {
		t.Fatalf("%d keys in the file, want %d: writers lost each other's changes", got, 6*n)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want root-only 0600", fi.Mode().Perm())
	}
}
