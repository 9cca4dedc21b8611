package main

import (
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

func TestSpecGroup(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ spec, want string }{
		{`{"annotations":{"io.containerd.runc.v2.group":"rosos-system"}}`, "rosos-system"},
		{`{"annotations":{"io.kubernetes.cri.sandbox-id":"abc","io.containerd.runc.v2.group":"g"}}`, "g"},
		{`{"annotations":{"io.kubernetes.cri.sandbox-id":"abc"}}`, "abc"},
		{`{"annotations":{"other":"x"}}`, ""},
		{`{}`, ""},
		{`not json`, ""},
	} {
		p := filepath.Join(dir, "config.json")
		if err := os.WriteFile(p, []byte(c.spec), 0o600); err != nil {
			t.Fatal(err)
		}
		if got := specGroup(p); got != c.want {
			t.Errorf("specGroup(%s) = %q, want %q", c.spec, got, c.want)
		}
	}
	if got := specGroup(filepath.Join(dir, "missing.json")); got != "" {
		t.Errorf("specGroup of a missing file = %q, want none", got)
	}
}

func TestReachable(t *testing.T) {
	dir := t.TempDir()
	// A listener that never accepts still takes connections into its
	// backlog: the group's shim busy is the group's shim there.
	live := filepath.Join(dir, "live")
	l, err := net.Listen("unix", live)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if !reachable(live, time.Second, time.Second) {
		t.Error("a listening socket is not reachable")
	}

	start := time.Now()
	if reachable(filepath.Join(dir, "none"), 5*time.Second, time.Second) {
		t.Error("a missing socket is reachable")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("a missing socket was dialed for %v, want no retries", d)
	}

	// A socket file nobody listens on (its shim died) is given up after
	// the refused wait, not the whole limit.
	stale := filepath.Join(dir, "stale")
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: stale}); err != nil {
		t.Fatal(err)
	}
	syscall.Close(fd)
	if reachable(stale, time.Minute, 200*time.Millisecond) {
		t.Error("a socket without a listener is reachable")
	}

	// Bound, then listening a moment later (another shim between its bind
	// and its listen): reachable once it listens.
	late := filepath.Join(dir, "late")
	fd, err = syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: late}); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(300 * time.Millisecond)
		syscall.Listen(fd, 16)
	}()
	if !reachable(late, 5*time.Second, 3*time.Second) {
		t.Error("a socket that listens 300 ms after its bind is not reachable")
	}
}
