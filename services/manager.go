package services

import (
	"context"
	"fmt"
	"io"

	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/moby/sys/signal"

	"github.com/rosos/ros/init/bootlog"
)

// Manager starts the configured services in order and keeps them running by
// their restart policy. It is a child of PID 1; when it dies and comes back
// it adopts the containers that are still running.
type Manager struct {
	Runner  *Runner
	Console io.Writer // boot messages a user must see
	Log     io.Writer
	// Timeline records when each service was created and started.
	Timeline *bootlog.Log

	mu    sync.Mutex
	state map[string]*State
	defs  []Service
	wg    sync.WaitGroup
}

// State is what the manager knows of one service.
type State struct {
	Service  Service
	Status   string // created, starting, running, exited, failed, stopped
	Pid      uint32
	Restarts int
	Since    time.Time
	LastErr  string
}

func (m *Manager) logf(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	fmt.Fprintln(m.Log, time.Now().Format(time.RFC3339), line)
}

// consolef prints a line a user must see during boot on the console, with
// the seconds since the kernel started, like PID 1's stage lines.
func (m *Manager) consolef(format string, args ...any) {
	m.logf(format, args...)
	if m.Console != nil {
		fmt.Fprintf(m.Console, "ros: [%8.3f] %s\n", bootlog.Since().Seconds(), fmt.Sprintf(format, args...))
	}
}

// mark records a service's step in the boot timeline.
func (m *Manager) mark(service, step string) {
	if m.Timeline != nil {
		m.Timeline.Mark("service", service, step)
	}
}

// Start starts every service in order. A service that fails to start is
// reported and retried by its policy; it does not hold back the others.
// One-shot services (io.rancher.os.detach=false) run to the end before the
// services ordered after them start.
func (m *Manager) Start(ctx context.Context, defs []Service) error {
	ordered, err := Order(defs)
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.defs = ordered
	m.state = map[string]*State{}
	for _, s := range ordered {
		m.state[s.Name] = &State{Service: s, Status: "starting"}
	}
	m.mu.Unlock()
	for _, s := range ordered {
		t, err := m.Runner.Start(ctx, s)
		if err != nil {
			m.consolef("service %s failed to start: %v", s.Name, err)
			m.set(s.Name, func(st *State) { st.Status = "failed"; st.LastErr = err.Error() })
			m.wg.Add(1)
			go m.supervise(ctx, s, nil)
			continue
		}
		if t == nil { // createonly
			m.set(s.Name, func(st *State) { st.Status = "created" })
			continue
		}
		if t.Adopted {
			m.logf("service %s adopted (already running), pid %d", s.Name, t.Pid)
		} else {
			m.consolef("service %s started, pid %d", s.Name, t.Pid)
			m.mark(s.Name, "started")
		}
		m.set(s.Name, func(st *State) { st.Status = "running"; st.Pid = t.Pid; st.Since = time.Now() })
		if !s.Detach {
			st := <-t.Wait()
			code, _, _ := st.Result()
			m.set(s.Name, func(st *State) { st.Status = "exited" })
			m.logf("one-shot service %s finished with exit status %d", s.Name, code)
			_ = m.Runner.Stop(ctx, s.Name, syscall.SIGTERM, time.Second)
			continue
		}
		m.wg.Add(1)
		go m.supervise(ctx, s, t)
	}
	return nil
}

func (m *Manager) set(name string, f func(*State)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if st, ok := m.state[name]; ok {
		f(st)
	}
}

// States returns a copy of every service's state, by name.
func (m *Manager) States() []State {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []State
	for _, st := range m.state {
		out = append(out, *st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Service.Name < out[j].Service.Name })
	return out
}

// Backoff is the wait before restart n (1-based): 1s, 2s, 4s ... up to max.
func Backoff(n int, max time.Duration) time.Duration {
	d := time.Second
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	return min(d, max)
}

// ShouldRestart applies a compose restart policy to an exit.
func ShouldRestart(policy string, code uint32, restarts int) bool {
	switch {
	case policy == "always" || policy == "unless-stopped":
		return true
	case policy == "on-failure":
		return code != 0
	case strings.HasPrefix(policy, "on-failure:"):
		var max int
		fmt.Sscanf(strings.TrimPrefix(policy, "on-failure:"), "%d", &max)
		return code != 0 && restarts < max
	}
	return false
}

// supervise waits for the service's task to exit and restarts it by its
// policy, with exponential back-off while it keeps crashing.
func (m *Manager) supervise(ctx context.Context, s Service, t *Task) {
	defer m.wg.Done()
	restarts := 0
	for {
		var code uint32 = 1
		began := time.Now()
		if t != nil {
			select {
			case st := <-t.Wait():
				code, _, _ = st.Result()
			case <-ctx.Done():
				return
			}
			m.logf("service %s exited with status %d", s.Name, code)
			m.set(s.Name, func(st *State) { st.Status = "exited" })
		}
		if ctx.Err() != nil {
			return
		}
		if !ShouldRestart(s.Restart, code, restarts) {
			return
		}
		if time.Since(began) > 2*time.Minute {
			restarts = 0 // it ran a good while: start the back-off afresh
		}
		restarts++
		wait := Backoff(restarts, time.Minute)
		m.set(s.Name, func(st *State) { st.Restarts++; st.Status = "restarting" })
		m.logf("service %s: restart %d in %s", s.Name, restarts, wait)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return
		}
		nt, err := m.Runner.Restart(ctx, s)
		if err != nil {
			m.logf("service %s: restart failed: %v", s.Name, err)
			m.set(s.Name, func(st *State) { st.Status = "failed"; st.LastErr = err.Error() })
			t = nil
			continue
		}
		t = nt
		m.set(s.Name, func(st *State) { st.Status = "running"; st.Pid = t.Pid; st.Since = time.Now() })
	}
}

// StopAll stops the services in reverse start order, each within its grace
// period, for a shutdown.
func (m *Manager) StopAll(ctx context.Context) {
	m.mu.Lock()
	defs := append([]Service(nil), m.defs...)
	m.mu.Unlock()
	for i := len(defs) - 1; i >= 0; i-- {
		s := defs[i]
		sig := syscall.SIGTERM
		if s.StopSignal != "" {
			if parsed, err := signal.ParseSignal(s.StopSignal); err == nil {
				sig = parsed
			}
		}
		grace := s.StopGrace
		if grace == 0 {
			grace = 10 * time.Second
		}
		if err := m.Runner.Stop(ctx, s.Name, sig, grace); err != nil {
			m.logf("stop %s: %v", s.Name, err)
		} else {
			m.logf("service %s stopped", s.Name)
		}
		m.set(s.Name, func(st *State) { st.Status = "stopped" })
	}
}

// Wait waits for the supervisors to end (after their context is cancelled).
func (m *Manager) Wait() { m.wg.Wait() }

// Connect connects to system containerd in the system namespace.
func Connect(sock string) (*containerd.Client, error) {
	c, err := containerd.New(sock, containerd.WithDefaultNamespace("system"), containerd.WithTimeout(30*time.Second))
	if err != nil {
		return nil, fmt.Errorf("connect to system containerd at %s: %w", sock, err)
	}
	return c, nil
}

// LogPath is where a service's output goes.
func LogPath(dir, name string) string { return filepath.Join(dir, name+".log") }
