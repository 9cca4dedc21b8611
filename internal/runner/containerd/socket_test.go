package containerd

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/pkg/oci"
)

func TestWaitSocketComesUp(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "containerd.sock")
	go func() {
		time.Sleep(200 * time.Millisecond)
		l, err := net.Listen("unix", sock)
		if err != nil {
			t.Error(err)
			return
		}
		t.Cleanup(func() { l.Close() })
	}()
	if err := WaitSocket(context.Background(), sock, 10*time.Second); err != nil {
		t.Fatalf("socket that comes up after 200ms: %v", err)
	}
}

func TestWaitSocketNamesTheSocketOnTimeout(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "containerd.sock")
	err := WaitSocket(context.Background(), sock, 150*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), sock) {
		t.Fatalf("no socket: got %v, want an error naming %s", err, sock)
	}
}

func TestWaitSocketStopsWithContext(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "containerd.sock")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := WaitSocket(ctx, sock, time.Minute)
	if err == nil || !strings.Contains(err.Error(), "context deadline exceeded") {
		t.Fatalf("cancelled wait: got %v", err)
	}
}

func TestCPUWeight(t *testing.T) {
	// compose's cpu_shares as cgroup v2 weights: the default share is the
	// default weight, and the OS's own settings (udev 128, the console
	// 4096) keep the weights the docs give, whatever the runtime.
	for shares, want := range map[uint64]string{1024: "100", 128: "21", 4096: "303", 2: "1", 262144: "10000"} {
		var s oci.Spec
		if err := withCPUWeight(shares)(context.Background(), nil, nil, &s); err != nil {
			t.Fatal(err)
		}
		if got := s.Linux.Resources.Unified["cpu.weight"]; got != want {
			t.Errorf("cpu_shares %d: cpu.weight %s, want %s", shares, got, want)
		}
		if s.Linux.Resources.CPU != nil {
			t.Errorf("cpu_shares %d: shares set too (%+v): a runtime would convert them its own way", shares, s.Linux.Resources.CPU)
		}
	}
}
