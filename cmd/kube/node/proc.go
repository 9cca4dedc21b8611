package node

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// policy is how a component is restarted. A component that ends is
// started again after a pause that doubles from min to max, so one slow
// moment (etcd slow under load, a watch that times out) costs that
// component a restart, not the whole node. One that fails giveUpAfter
// times in a row, each run shorter than stable, ends the node: the
// service manager restarts it as a whole, and its log says why.
type policy struct {
	min, max, stable time.Duration
	giveUpAfter      int
}

var defaultPolicy = policy{min: time.Second, max: 30 * time.Second, stable: 2 * time.Minute, giveUpAfter: 8}

// group runs and supervises the node's processes.
type group struct {
	policy   policy
	log      *slog.Logger
	self     string // this binary, for the components it holds
	mu       sync.Mutex
	running  map[string]*exec.Cmd
	stopping bool
	wg       sync.WaitGroup
	died     chan error
}

func newGroup(log *slog.Logger) (*group, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return &group{policy: defaultPolicy, log: log, self: self, running: map[string]*exec.Cmd{}, died: make(chan error, 16)}, nil
}

// start runs a program (a component of this binary when path is empty)
// with its output prefixed by name on this process's output, and keeps
// it running. The first start's error is returned.
func (g *group) start(name, path string, args ...string) error {
	if path == "" {
		path = g.self
		args = append([]string{name}, args...)
	}
	cmd, err := g.spawn(name, path, args)
	if err != nil {
		return err
	}
	g.wg.Add(1)
	go g.supervise(name, path, args, cmd)
	return nil
}

func (g *group) spawn(name, path string, args []string) (*exec.Cmd, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopping {
		return nil, fmt.Errorf("start %s: the node is stopping", name)
	}
	cmd := exec.Command(path, args...)
	cmd.Env = os.Environ()
	// The component dies with the node, even if the node is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	// Not a pipe of our own: Wait returns only once exec has copied the
	// component's last words (why it ended) to the log.
	w := &prefixWriter{name: name, out: os.Stdout}
	cmd.Stdout, cmd.Stderr = w, w
	// A child the component left behind (containerd's shims) may hold
	// the pipe open: after the component ends, its output is waited for
	// this long, then the pipe is closed and supervision goes on.
	cmd.WaitDelay = 5 * time.Second
	g.log.Info("starting", "component", name)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	g.running[name] = cmd
	return cmd, nil
}

// supervise waits for a component and starts it again when it ends,
// until the node stops or the component keeps failing.
func (g *group) supervise(name, path string, args []string, cmd *exec.Cmd) {
	defer g.wg.Done()
	failures := 0
	pause := g.policy.min
	for {
		began := time.Now()
		err := cmd.Wait()
		if w, ok := cmd.Stdout.(*prefixWriter); ok {
			w.flush()
		}
		g.mu.Lock()
		stopping := g.stopping
		delete(g.running, name)
		g.mu.Unlock()
		if stopping {
			return
		}
		if err == nil {
			err = fmt.Errorf("exited")
		}
		if time.Since(began) >= g.policy.stable {
			failures, pause = 0, g.policy.min
		}
		failures++
		if failures >= g.policy.giveUpAfter {
			g.died <- fmt.Errorf("%s: %w (%d times in a row, each within %s)", name, err, failures, g.policy.stable)
			return
		}
		g.log.Warn("component ended, restarting", "component", name, "err", err, "ran", time.Since(began).Round(time.Second).String(), "in", pause.String())
		time.Sleep(pause)
		pause = min(2*pause, g.policy.max)
		for {
			if cmd, err = g.spawn(name, path, args); err == nil {
				break
			}
			g.mu.Lock()
			stopping := g.stopping
			g.mu.Unlock()
			if stopping {
				return
			}
			g.log.Error("restart", "component", name, "err", err)
			time.Sleep(pause)
		}
	}
}

// prefixWriter copies a component's output line by line, each line led
// by its name, so that `ros service logs kubernetes` tells them apart. A
// line longer than maxLine is cut into pieces.
type prefixWriter struct {
	name string
	out  io.Writer
	buf  []byte
}

const maxLine = 64 << 10

func (w *prefixWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 && len(w.buf) < maxLine {
			return len(p), nil
		}
		if i < 0 {
			i = maxLine
		}
		line := w.buf[:i]
		fmt.Fprintf(w.out, "%s: %s\n", w.name, line)
		if i < len(w.buf) && w.buf[i] == '\n' {
			i++
		}
		w.buf = append(w.buf[:0], w.buf[i:]...)
	}
}

// flush writes a last line that had no newline.
func (w *prefixWriter) flush() {
	if len(w.buf) > 0 {
		fmt.Fprintf(w.out, "%s: %s\n", w.name, w.buf)
		w.buf = w.buf[:0]
	}
}

// wait returns when the node fails or ctx is done.
func (g *group) wait(ctx context.Context) error {
	select {
	case err := <-g.died:
		return err
	case <-ctx.Done():
		return nil
	}
}

// stop ends every process: SIGTERM, and SIGKILL to those still there
// after the grace time.
func (g *group) stop(grace time.Duration) {
	g.mu.Lock()
	g.stopping = true
	procs := make([]*exec.Cmd, 0, len(g.running))
	for _, c := range g.running {
		procs = append(procs, c)
	}
	g.mu.Unlock()
	for _, p := range procs {
		_ = p.Process.Signal(syscall.SIGTERM)
	}
	deadline := time.Now().Add(grace)
	for _, p := range procs {
		for time.Now().Before(deadline) && p.Process.Signal(syscall.Signal(0)) == nil {
			time.Sleep(100 * time.Millisecond)
		}
		_ = p.Process.Kill()
	}
	g.wg.Wait()
}
