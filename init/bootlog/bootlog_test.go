package bootlog

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestStagesAreNumberedAndTimed(t *testing.T) {
	var buf bytes.Buffer
	l := New(&buf, "stage1")
	tick := time.Duration(0)
	l.now = func() time.Duration { tick += 1500 * time.Millisecond; return tick }
	l.Stage("mount pseudo file systems")
	l.Stage("load modules")
	want := "ros: [   1.500] stage1 1: mount pseudo file systems\nros: [   3.000] stage1 2: load modules\n"
	if buf.String() != want {
		t.Fatalf("got %q, want %q", buf.String(), want)
	}
	path := filepath.Join(t.TempDir(), "timeline.jsonl")
	if err := l.Save(path); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if strings.Count(string(b), "\n") != 2 || !strings.Contains(string(b), `"at":3`) {
		t.Fatalf("saved %q", b)
	}
}

func TestSinceIsMonotonic(t *testing.T) {
	a := Since()
	b := Since()
	if a <= 0 || b < a {
		t.Fatalf("Since went %v then %v", a, b)
	}
}
