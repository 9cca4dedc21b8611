package pid1

import (
	"os"
	"os/exec"
	"os/signal"
	"sync"

	"golang.org/x/sys/unix"
)

// Reaper is the only caller of wait4 in PID 1. Every exited child is reaped
// here; the ones PID 1 started itself have their status handed to whoever
// waits on them, the rest (orphans reparented to PID 1, such as containerd's
// shims) are just reaped. Starting a child and registering it happen under
// the same lock as reaping, so a child that exits at once is not lost.
type Reaper struct {
	mu      sync.Mutex
	waiters map[int]chan unix.WaitStatus
	orphans int
}

// NewReaper starts reaping on SIGCHLD.
func NewReaper() *Reaper {
	r := &Reaper{waiters: map[int]chan unix.WaitStatus{}}
	ch := make(chan os.Signal, 64)
	signal.Notify(ch, unix.SIGCHLD)
	go func() {
		for range ch {
			r.reap()
		}
	}()
	return r
}

func (r *Reaper) reap() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return
		}
		if w, ok := r.waiters[pid]; ok {
			delete(r.waiters, pid)
			w <- ws
			close(w)
		} else {
			r.orphans++
		}
	}
}

// Orphans is how many processes PID 1 reaped that it had not started.
func (r *Reaper) Orphans() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.orphans
}

// Start starts cmd and returns a channel that gets its wait status once.
// Never call cmd.Wait: the reaper owns wait4.
func (r *Reaper) Start(cmd *exec.Cmd) (<-chan unix.WaitStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	w := make(chan unix.WaitStatus, 1)
	r.waiters[cmd.Process.Pid] = w
	return w, nil
}
