package containerd

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
