package node

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// group runs the node's processes. When one ends that should not, the
// node stops them all and Run returns its error, so the service manager
// restarts the node as one (compose restart: always).
type group struct {
	log   *slog.Logger
	self  string // this binary, for the components it holds
	mu    sync.Mutex
	procs []*exec.Cmd
	died  chan error
}

func newGroup(log *slog.Logger) (*group, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return &group{log: log, self: self, died: make(chan error, 16)}, nil
}

// start runs a program (a component of this binary when path is empty)
// with its output prefixed by name on this process's output.
func (g *group) start(name, path string, args ...string) error {
	if path == "" {
		path = g.self
		args = append([]string{name}, args...)
	}
	cmd := exec.Command(path, args...)
	cmd.Env = os.Environ()
	// The component dies with the node, even if the node is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = cmd.Stdout
	g.log.Info("starting", "component", name)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	g.mu.Lock()
	g.procs = append(g.procs, cmd)
	g.mu.Unlock()
	go prefix(name, out)
	go func() {
		err := cmd.Wait()
		if err == nil {
			err = errors.New("exited")
		}
		g.died <- fmt.Errorf("%s: %w", name, err)
	}()
	return nil
}

// prefix copies a component's output line by line, each line led by its
// name, so that `ros service logs kubernetes` tells them apart.
func prefix(name string, r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fmt.Fprintf(os.Stdout, "%s: %s\n", name, sc.Bytes())
	}
}

// wait returns when a component ends or ctx is done.
func (g *group) wait(ctx context.Context) error {
	select {
	case err := <-g.died:
		return err
	case <-ctx.Done():
		return nil
	}
}

// stop ends every process, newest first: SIGTERM, and SIGKILL to those
// still there after the grace time.
func (g *group) stop(grace time.Duration) {
	g.mu.Lock()
	procs := append([]*exec.Cmd{}, g.procs...)
	g.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		_ = procs[i].Process.Signal(syscall.SIGTERM)
	}
	deadline := time.Now().Add(grace)
	for _, p := range procs {
		for time.Now().Before(deadline) && p.Process.Signal(syscall.Signal(0)) == nil {
			time.Sleep(100 * time.Millisecond)
		}
		_ = p.Process.Kill()
	}
}
