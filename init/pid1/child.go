package pid1

import (
	"fmt"
	"os"
	"os/exec"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// child is a long-running process PID 1 owns and restarts when it dies,
// with a back-off that grows while it keeps dying soon after it started.
type child struct {
	name    string
	make    func() (*exec.Cmd, func(), error) // the command, and what to do after it started
	log     func(format string, args ...any)
	reaper  *Reaper
	mu      sync.Mutex
	proc    *os.Process
	exited  chan struct{} // closed when the current process exits
	stopped bool
}

// supervise starts the child and keeps it running until stop.
func (c *child) supervise() {
	backoff := time.Second
	go func() {
		for {
			c.mu.Lock()
			if c.stopped {
				c.mu.Unlock()
				return
			}
			cmd, started, err := c.make()
			var w <-chan unix.WaitStatus
			if err == nil {
				w, err = c.reaper.Start(cmd)
			}
			if err != nil {
				c.mu.Unlock()
				c.log("%s: cannot start: %v; again in %s", c.name, err, backoff)
				time.Sleep(backoff)
				backoff = min(backoff*2, 30*time.Second)
				continue
			}
			c.proc = cmd.Process
			c.exited = make(chan struct{})
			exited := c.exited
			c.mu.Unlock()
			if started != nil {
				started()
			}
			began := time.Now()
			ws := <-w
			close(exited)
			c.mu.Lock()
			stopped := c.stopped
			c.mu.Unlock()
			if stopped {
				return
			}
			if time.Since(began) > time.Minute {
				backoff = time.Second
			}
			c.log("%s (pid %d) exited (%s); restarting in %s", c.name, cmd.Process.Pid, describe(ws), backoff)
			time.Sleep(backoff)
			backoff = min(backoff*2, 30*time.Second)
		}
	}()
}

// stop sends sig and waits up to grace for the process to exit, then kills it.
func (c *child) stop(sig unix.Signal, grace time.Duration) {
	c.mu.Lock()
	c.stopped = true
	p, exited := c.proc, c.exited
	c.mu.Unlock()
	if p == nil {
		return
	}
	_ = p.Signal(sig)
	select {
	case <-exited:
	case <-time.After(grace):
		c.log("%s did not stop within %s: killing it", c.name, grace)
		_ = p.Kill()
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
		}
	}
}

func describe(ws unix.WaitStatus) string {
	if ws.Signaled() {
		return fmt.Sprintf("killed by %s", ws.Signal())
	}
	return fmt.Sprintf("exit status %d", ws.ExitStatus())
}

// logFile opens an append-only log for a child's output.
func logFile(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
}
