package services

import (
	"context"
	"errors"
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
	// Timeline records when each service was created, started and healthy.
	Timeline *bootlog.Log

	mu    sync.Mutex
	svcs  map[string]*entry
	order []string // start order of every service the manager knows
	wg    sync.WaitGroup
	root  context.Context
	// Restarted is set when the manager started again within a boot: a
	// service that ran and ended (a one-shot, or restart "no") is not run
	// again, as a Docker engine's restart would not either.
	Restarted bool
	// Node is the node's config (nil in tests that give services directly).
	Node *NodeConfig
}

// entry is one service and its supervisor.
type entry struct {
	State
	cancel  context.CancelFunc // stops the supervisor
	done    chan struct{}      // closed when the supervisor has ended
	healthy chan struct{}      // closed when the service is first healthy
	exited  chan uint32        // gets a one-shot's exit status
}

// State is what the manager knows of one service.
type State struct {
	Service  Service   `json:"-"`
	Name     string    `json:"name"`
	Image    string    `json:"image"`
	Source   string    `json:"source"` // built-in, catalog, file, url
	Status   string    `json:"state"`  // starting, running, restarting, exited, failed, stopped, created
	Health   string    `json:"health,omitempty"`
	Pid      uint32    `json:"pid,omitempty"`
	Restarts int       `json:"restarts"`
	Since    time.Time `json:"since,omitzero"`
	ExitCode uint32    `json:"exit_code,omitempty"`
	LastErr  string    `json:"last_error,omitempty"`
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

// Start starts every service in order and returns when each has been
// started (one-shots: finished). A service that fails to start is reported
// and retried by its policy; it does not hold back the others. A service
// whose depends_on asks for service_healthy or
// service_completed_successfully waits for that, up to a bound.
func (m *Manager) Start(ctx context.Context, defs []Service, sources map[string]string) error {
	ordered, err := Order(defs)
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.root = ctx
	if m.svcs == nil {
		m.svcs = map[string]*entry{}
	}
	for _, s := range ordered {
		src := sources[s.Name]
		if src == "" {
			src = "built-in"
		}
		m.svcs[s.Name] = newEntry(s, src)
		m.order = append(m.order, s.Name)
	}
	m.mu.Unlock()
	for _, s := range ordered {
		m.waitConditions(ctx, s)
		m.launch(ctx, s)
	}
	return nil
}

func newEntry(s Service, source string) *entry {
	return &entry{State: State{Service: s, Name: s.Name, Image: s.Image, Source: source, Status: "starting"},
		healthy: make(chan struct{}), exited: make(chan uint32, 1)}
}

// conditionWait bounds how long a service waits for a dependency's
// condition before it starts anyway (and says so).
const conditionWait = 2 * time.Minute

func (m *Manager) waitConditions(ctx context.Context, s Service) {
	for dep, cond := range s.Conditions {
		m.mu.Lock()
		e := m.svcs[dep]
		m.mu.Unlock()
		if e == nil {
			m.consolef("service %s: depends on %s (%s), which is not configured", s.Name, dep, cond)
			continue
		}
		var ch <-chan struct{} = e.healthy
		if cond == "service_completed_successfully" {
			done := make(chan struct{})
			go func() {
				select {
				case code := <-e.exited:
					e.exited <- code // for the next one waiting
					if code == 0 {
						close(done)
					}
				case <-ctx.Done():
				}
			}()
			ch = done
		}
		select {
		case <-ch:
		case <-time.After(conditionWait):
			m.consolef("service %s: %s not %s after %s; starting anyway", s.Name, dep, strings.TrimPrefix(cond, "service_"), conditionWait)
		case <-ctx.Done():
		}
	}
}

// launch starts one service and its supervisor. It blocks for a one-shot
// (io.rancher.os.detach=false) until it has finished.
func (m *Manager) launch(ctx context.Context, s Service) {
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	m.mu.Lock()
	e := m.svcs[s.Name]
	e.cancel, e.done = cancel, done
	m.mu.Unlock()
	if m.Restarted && (!s.Detach || s.Restart == "" || s.Restart == "no") && m.Runner.Ran(ctx, s) {
		m.set(s.Name, func(st *State) { st.Status = "exited" })
		m.logf("service %s ran earlier in this boot; not run again", s.Name)
		close(done)
		return
	}
	m.mark(s.Name, "starting")
	t, err := m.Runner.Start(ctx, s)
	if err != nil {
		m.consolef("service %s failed to start: %v", s.Name, err)
		m.set(s.Name, func(st *State) { st.Status = "failed"; st.LastErr = err.Error() })
		m.wg.Add(1)
		go m.supervise(sctx, s, nil, done)
		return
	}
	if t == nil { // createonly
		m.mark(s.Name, "created")
		m.set(s.Name, func(st *State) { st.Status = "created" })
		close(done)
		return
	}
	if t.Adopted {
		m.logf("service %s adopted (already running), pid %d", s.Name, t.Pid)
	} else {
		m.consolef("service %s started, pid %d", s.Name, t.Pid)
		m.mark(s.Name, "started")
	}
	m.set(s.Name, func(st *State) { st.Status = "running"; st.Pid = t.Pid; st.Since = time.Now(); st.LastErr = "" })
	if s.Health != nil {
		go m.healthLoop(sctx, s)
	} else {
		m.setHealthy(s.Name)
	}
	if !s.Detach {
		var code uint32
		select {
		case st := <-t.Wait():
			code, _, _ = st.Result()
		case <-ctx.Done():
		}
		m.set(s.Name, func(st *State) { st.Status = "exited"; st.ExitCode = code })
		select {
		case e.exited <- code:
		default:
		}
		m.logf("one-shot service %s finished with exit status %d", s.Name, code)
		_ = m.Runner.Stop(ctx, s.Name, syscall.SIGTERM, time.Second)
		close(done)
		return
	}
	m.wg.Add(1)
	go m.supervise(sctx, s, t, done)
}

func (m *Manager) setHealthy(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.svcs[name]
	if e == nil {
		return
	}
	select {
	case <-e.healthy:
	default:
		close(e.healthy)
		if m.Timeline != nil {
			m.Timeline.Mark("service", name, "healthy")
		}
	}
}

// healthLoop runs the service's healthcheck in its container every
// interval; retries failures in a row make it unhealthy.
func (m *Manager) healthLoop(ctx context.Context, s Service) {
	h := s.Health
	began := time.Now()
	fails := 0
	m.set(s.Name, func(st *State) { st.Health = "starting" })
	tick := time.NewTicker(h.Interval)
	defer tick.Stop()
	check := func() {
		cctx, cancel := context.WithTimeout(ctx, h.Timeout)
		var out lockedTail
		code, err := m.Runner.Exec(cctx, s.Name, h.Test, nil, &out, &out, false)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err == nil && code == 0 {
			if fails > 0 {
				m.logf("service %s: healthcheck passes again", s.Name)
			}
			fails = 0
			m.set(s.Name, func(st *State) { st.Health = "healthy" })
			m.setHealthy(s.Name)
			return
		}
		if fails == 0 {
			m.logf("service %s: healthcheck failed: exit status %d, %v: %s", s.Name, code, err, out.String())
		}
		if time.Since(began) < h.StartPeriod {
			return
		}
		fails++
		if fails >= h.Retries {
			m.set(s.Name, func(st *State) { st.Health = "unhealthy" })
		}
	}
	// The first check soon after the start, then by the interval.
	select {
	case <-time.After(min(h.Interval, 2*time.Second)):
		check()
	case <-ctx.Done():
		return
	}
	for {
		select {
		case <-tick.C:
			check()
		case <-ctx.Done():
			return
		}
	}
}

// lockedTail keeps the last 2 KiB written to it, from two streams.
type lockedTail struct {
	mu sync.Mutex
	b  []byte
}

func (l *lockedTail) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b = append(l.b, p...)
	if len(l.b) > 2048 {
		l.b = l.b[len(l.b)-2048:]
	}
	return len(p), nil
}

func (l *lockedTail) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.TrimSpace(string(l.b))
}

func (m *Manager) set(name string, f func(*State)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.svcs[name]; ok {
		f(&e.State)
	}
}

// States returns a copy of every service's state, by name.
func (m *Manager) States() []State {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []State
	for _, e := range m.svcs {
		out = append(out, e.State)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
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
// policy, with exponential back-off while it keeps crashing. It ends when
// ctx does (the service was stopped, or the manager is stopping).
func (m *Manager) supervise(ctx context.Context, s Service, t *Task, done chan struct{}) {
	defer m.wg.Done()
	defer close(done)
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
			m.set(s.Name, func(st *State) { st.Status = "exited"; st.ExitCode = code; st.Pid = 0 })
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
		m.set(s.Name, func(st *State) { st.Status = "running"; st.Pid = t.Pid; st.Since = time.Now(); st.LastErr = "" })
	}
}

// ErrUnknown means no service has that name.
var ErrUnknown = errors.New("no such service")

func (m *Manager) lookup(name string) (*entry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.svcs[name]
	if !ok {
		return nil, fmt.Errorf("service %s: %w (see `ros service list`)", name, ErrUnknown)
	}
	return e, nil
}

// stopOne ends the supervisor of name and stops its container within the
// service's grace period. The service stays known, as stopped.
func (m *Manager) stopOne(ctx context.Context, name string) error {
	e, err := m.lookup(name)
	if err != nil {
		return err
	}
	m.mu.Lock()
	cancel, done, s := e.cancel, e.done, e.Service
	m.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
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
	if err := m.Runner.Stop(ctx, name, sig, grace); err != nil {
		return err
	}
	m.set(name, func(st *State) { st.Status = "stopped"; st.Pid = 0; st.Health = "" })
	m.logf("service %s stopped", name)
	return nil
}

// StartOne starts a known service that is not running.
func (m *Manager) StartOne(name string) error {
	e, err := m.lookup(name)
	if err != nil {
		return err
	}
	m.mu.Lock()
	running := e.done != nil && !closed(e.done)
	s := e.Service
	ctx := m.root
	m.mu.Unlock()
	if running {
		return nil
	}
	m.launch(ctx, s)
	return nil
}

// RestartOne stops and starts a service.
func (m *Manager) RestartOne(ctx context.Context, name string) error {
	if err := m.stopOne(ctx, name); err != nil {
		return err
	}
	m.set(name, func(st *State) { st.Restarts++ })
	return m.StartOne(name)
}

// StopOne stops a service until it is started again (or the next boot).
func (m *Manager) StopOne(ctx context.Context, name string) error { return m.stopOne(ctx, name) }

// RemoveOne stops a service and removes its container; it stays known.
func (m *Manager) RemoveOne(ctx context.Context, name string) error {
	if err := m.stopOne(ctx, name); err != nil {
		return err
	}
	if err := m.Runner.Remove(ctx, name); err != nil {
		return err
	}
	m.set(name, func(st *State) { st.Status = "removed" })
	return nil
}

// Add starts services that were not known (an enabled service) in order.
func (m *Manager) Add(defs []Service, source string) error {
	m.mu.Lock()
	for _, s := range defs {
		if _, ok := m.svcs[s.Name]; ok {
			m.mu.Unlock()
			return fmt.Errorf("service %s already exists", s.Name)
		}
	}
	m.mu.Unlock()
	src := map[string]string{}
	for _, s := range defs {
		src[s.Name] = source
	}
	return m.Start(m.root, defs, src)
}

// Forget stops and removes services and forgets them (a disabled service).
func (m *Manager) Forget(ctx context.Context, names []string) error {
	var errs []error
	for _, n := range names {
		if err := m.RemoveOne(ctx, n); err != nil && !errors.Is(err, ErrUnknown) {
			errs = append(errs, err)
			continue
		}
		m.mu.Lock()
		delete(m.svcs, n)
		for i, o := range m.order {
			if o == n {
				m.order = append(m.order[:i], m.order[i+1:]...)
				break
			}
		}
		m.mu.Unlock()
	}
	return errors.Join(errs...)
}

func closed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// StopAll stops the services in reverse start order, each within its grace
// period, for a shutdown.
func (m *Manager) StopAll(ctx context.Context) {
	m.mu.Lock()
	order := append([]string(nil), m.order...)
	m.mu.Unlock()
	for i := len(order) - 1; i >= 0; i-- {
		if err := m.stopOne(ctx, order[i]); err != nil {
			m.logf("stop %s: %v", order[i], err)
		}
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
