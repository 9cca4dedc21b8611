package node

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func testGroup(t *testing.T) *group {
	t.Helper()
	g, err := newGroup(slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	g.policy = policy{min: 10 * time.Millisecond, max: 40 * time.Millisecond, stable: time.Minute, giveUpAfter: 4}
	return g
}

// A component that ends is started again; the node goes on.
func TestGroupRestartsAComponent(t *testing.T) {
	g := testGroup(t)
	count := filepath.Join(t.TempDir(), "runs")
	// The first two runs fail at once, the third stays up.
	script := `echo x >> "$1"; [ $(wc -l < "$1") -ge 3 ] && exec sleep 60; exit 1`
	if err := g.start("flaky", "/bin/sh", "-c", script, "sh", count); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(count)
		if strings.Count(string(b), "x") >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("component ran %d times, want 3", strings.Count(string(b), "x"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := g.wait(ctx); err != nil {
		t.Fatalf("node failed though the component came back: %v", err)
	}
	g.stop(5 * time.Second)
	if len(g.running) != 0 {
		t.Fatalf("still running after stop: %v", g.running)
	}
}

// A component that never stays up fails the node with its name and why.
func TestGroupGivesUpOnAComponentThatKeepsFailing(t *testing.T) {
	g := testGroup(t)
	if err := g.start("broken", "/bin/sh", "-c", "exit 3"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := g.wait(ctx)
	if err == nil || !strings.Contains(err.Error(), "broken") || !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), "4 times") {
		t.Fatalf("wait = %v, want the broken component's failure", err)
	}
	g.stop(time.Second)
}

// Stopping the node does not restart what it stops.
func TestGroupStopDoesNotRestart(t *testing.T) {
	g := testGroup(t)
	count := filepath.Join(t.TempDir(), "runs")
	if err := g.start("sleeper", "/bin/sh", "-c", `echo x >> "$1"; exec sleep 60`, "sh", count); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	g.stop(5 * time.Second)
	time.Sleep(100 * time.Millisecond)
	if b, _ := os.ReadFile(count); strings.Count(string(b), "x") != 1 {
		t.Fatalf("runs = %d, want 1", strings.Count(string(b), "x"))
	}
	if err := g.start("late", "/bin/true"); err == nil {
		t.Fatal("start after stop succeeded")
	}
}

func TestPrefixWriterCutsLines(t *testing.T) {
	var out bytes.Buffer
	w := &prefixWriter{name: "etcd", out: &out}
	for _, p := range []string{"one\ntw", "o\n", "three"} {
		if _, err := w.Write([]byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := out.String(), "etcd: one\netcd: two\n"; got != want {
		t.Errorf("got %q, want %q (three waits for its newline)", got, want)
	}
	w.flush()
	if got := out.String(); !strings.HasSuffix(got, "etcd: three\n") {
		t.Errorf("flush: %q", got)
	}
	out.Reset()
	if _, err := w.Write(bytes.Repeat([]byte("x"), maxLine+10)); err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(out.String(), "etcd: "); got != 1 || len(w.buf) != 10 {
		t.Errorf("a long line: %d pieces out, %d bytes kept", got, len(w.buf))
	}
}
