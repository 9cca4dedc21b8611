// Package supervisor starts services in order through a runner and keeps
// them running: start conditions (depends_on), restart policies with
// back-off, healthchecks, one-shots, adoption of what still runs after the
// service manager itself restarted, and stopping in reverse order.
package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/moby/sys/signal"

	"github.com/rosos/ros/init/bootlog"
	"github.com/rosos/ros/internal/compose"
	"github.com/rosos/ros/internal/runner"
)

// Supervisor starts the configured services in order and keeps them
// running by their restart policy. It lives in the service manager, a child
// of PID 1; when that dies and comes back it adopts the containers that are
// still running.
type Supervisor struct {
	Runner  runner.Runner
	Console io.Writer // boot messages a user must see
	Log     *slog.Logger
	// Timeline records when each service was created, started and healthy.
	Timeline *bootlog.Log
	// Restarted is set when the manager started again within a boot: a
	// service that ran and ended (a one-shot, or restart "no") is not run
	// again, as a Docker engine's restart would not either.
	Restarted bool
	// Backoff is the wait before restart n (1-based) of a service that
	// keeps ending; nil is Backoff(n, time.Minute).
	Backoff func(n int) time.Duration
	// ConditionWait bounds how long a service waits for a dependency's
	// condition before it starts anyway (and says so); 0 is two minutes.
	ConditionWait time.Duration

	mu    sync.Mutex
	svcs  map[string]*entry
	order []string // start order of every service the supervisor knows
	wg    sync.WaitGroup
	root  context.Context
}

// Status is where a service is in its life.
type Status string

// The statuses of a service.
const (
	Starting   Status = "starting"   // being started
	Running    Status = "running"    // its task runs
	Restarting Status = "restarting" // it ended; its restart policy starts it again after the back-off
	Exited     Status = "exited"     // it ended and stays so (a one-shot, or by its policy)
	Failed     Status = "failed"     // it could not be started; retried by its policy
	Stopped    Status = "stopped"    // stopped by ros service stop, or for a shutdown
	Created    Status = "created"    // io.rancher.os.createonly: its container is made, never started
	Removed    Status = "removed"    // ros service rm: stopped and its container removed
)

// Health is what a service's healthcheck says.
type Health string

// The healths of a service with a healthcheck (none without one).
const (
	NoHealth       Health = ""
	HealthStarting Health = "starting"  // no check has passed yet
	Healthy        Health = "healthy"   // the last check passed
	Unhealthy      Health = "unhealthy" // retries checks in a row failed
)

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
	Service  compose.Service `json:"-"`
	Name     string          `json:"name"`
	Image    string          `json:"image"`
	Source   string          `json:"source"` // built-in, catalog, file, url
	Status   Status          `json:"state"`
	Health   Health          `json:"health,omitempty"`
	Pid      uint32          `json:"pid,omitempty"`
	Restarts int             `json:"restarts"`
	Since    time.Time       `json:"since,omitzero"`
	ExitCode uint32          `json:"exit_code,omitempty"`
	LastErr  string          `json:"last_error,omitempty"`
}

func (m *Supervisor) logger() *slog.Logger {
	if m.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return m.Log
}

// consolef prints a line a user must see during boot on the console, with
// the seconds since the kernel started, like PID 1's stage lines, and logs
// it.
func (m *Supervisor) consolef(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	m.logger().Info(msg)
	bootlog.Console(m.Console, msg)
}

// mark records a service's step in the boot timeline.
func (m *Supervisor) mark(service, step string) {
	if m.Timeline != nil {
		m.Timeline.Mark("service", service, step)
	}
}

// Start starts every service and returns when each has been started
// (one-shots: finished). A service starts as soon as the services it
// waits for (depends_on, io.rancher.os.after, io.rancher.os.before) have
// started, so services that do not wait for each other start at the same
// time. A service that fails to start is reported and retried by its
// policy; it does not hold back the others. A service whose depends_on asks
// for service_healthy or service_completed_successfully waits for that, up
// to a bound.
func (m *Supervisor) Start(ctx context.Context, defs []compose.Service, sources map[string]string) error {
	ordered, err := compose.Order(defs)
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
	started := make(map[string]chan struct{}, len(ordered))
	for _, s := range ordered {
		started[s.Name] = make(chan struct{})
	}
	var wg sync.WaitGroup
	for _, s := range ordered {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(started[s.Name])
			for _, d := range compose.Deps(s, ordered) {
				select {
				case <-started[d]:
				case <-ctx.Done():
					return
				}
			}
			m.waitConditions(ctx, s)
			m.launch(ctx, s)
		}()
	}
	wg.Wait()
	return nil
}

func newEntry(s compose.Service, source string) *entry {
	return &entry{State: State{Service: s, Name: s.Name, Image: s.Image, Source: source, Status: Starting},
		healthy: make(chan struct{}), exited: make(chan uint32, 1)}
}

// conditionWait bounds how long a service waits for a dependency's
// condition before it starts anyway (and says so).
const conditionWait = 2 * time.Minute

func (m *Supervisor) conditionWait() time.Duration {
	if m.ConditionWait > 0 {
		return m.ConditionWait
	}
	return conditionWait
}

func (m *Supervisor) waitConditions(ctx context.Context, s compose.Service) {
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
		case <-time.After(m.conditionWait()):
			m.consolef("service %s: %s not %s after %s; starting anyway", s.Name, dep, strings.TrimPrefix(cond, "service_"), m.conditionWait())
		case <-ctx.Done():
		}
	}
}

// launch starts one service and its supervisor. It blocks for a one-shot
// (io.rancher.os.detach=false) until it has finished.
func (m *Supervisor) launch(ctx context.Context, s compose.Service) {
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	m.mu.Lock()
	e := m.svcs[s.Name]
	e.cancel, e.done = cancel, done
	m.mu.Unlock()
	if m.Restarted && (!s.Detach || s.Restart == "" || s.Restart == "no") && m.Runner.Ran(ctx, s) {
		m.set(s.Name, func(st *State) { st.Status = Exited })
		m.logger().Info("ran earlier in this boot; not run again", "service", s.Name)
		close(done)
		return
	}
	m.mark(s.Name, "starting")
	t, err := m.Runner.Start(ctx, s)
	if err != nil {
		m.consolef("service %s failed to start: %v", s.Name, err)
		m.set(s.Name, func(st *State) { st.Status = Failed; st.LastErr = err.Error() })
		m.wg.Add(1)
		go m.supervise(sctx, s, nil, done)
		return
	}
	if t == nil { // createonly
		m.mark(s.Name, "created")
		m.set(s.Name, func(st *State) { st.Status = Created })
		close(done)
		return
	}
	if t.Adopted {
		m.logger().Info("adopted (already running)", "service", s.Name, "pid", t.Pid)
	} else {
		m.consolef("service %s started, pid %d", s.Name, t.Pid)
		m.mark(s.Name, "started")
	}
	m.set(s.Name, func(st *State) { st.Status = Running; st.Pid = t.Pid; st.Since = time.Now(); st.LastErr = "" })
	if s.Health != nil {
		go m.healthLoop(sctx, s)
	} else {
		m.setHealthy(s.Name)
	}
	if !s.Detach {
		var code uint32
		select {
		case ex := <-t.Exited:
			code = ex.Code
		case <-ctx.Done():
		}
		m.set(s.Name, func(st *State) { st.Status = Exited; st.ExitCode = code })
		select {
		case e.exited <- code:
		default:
		}
		m.logger().Info("one-shot finished", "service", s.Name, "status", code)
		_ = m.Runner.Stop(ctx, s.Name, syscall.SIGTERM, time.Second)
		close(done)
		return
	}
	m.wg.Add(1)
	go m.supervise(sctx, s, t, done)
}

func (m *Supervisor) setHealthy(name string) {
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
func (m *Supervisor) healthLoop(ctx context.Context, s compose.Service) {
	h := s.Health
	began := time.Now()
	fails := 0
	m.set(s.Name, func(st *State) { st.Health = HealthStarting })
	tick := time.NewTicker(h.Interval)
	defer tick.Stop()
	check := func() {
		cctx, cancel := context.WithTimeout(ctx, h.Timeout)
		var out lockedTail
		code, err := m.check(cctx, s, &out)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err == nil && code == 0 {
			if fails > 0 {
				m.logger().Info("healthcheck passes again", "service", s.Name)
			}
			fails = 0
			m.set(s.Name, func(st *State) { st.Health = Healthy })
			m.setHealthy(s.Name)
			return
		}
		if fails == 0 {
			m.logger().Warn("healthcheck failed", "service", s.Name, "status", code, "err", err, "output", out.String())
		}
		if time.Since(began) < h.StartPeriod {
			return
		}
		fails++
		if fails >= h.Retries {
			m.set(s.Name, func(st *State) { st.Health = Unhealthy })
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

// check runs the service's healthcheck once: a `ros probe` from the
// manager where it can be made from there (hostProbe), anything else in
// the container.
func (m *Supervisor) check(ctx context.Context, s compose.Service, out io.Writer) (uint32, error) {
	root := ""
	m.mu.Lock()
	if e := m.svcs[s.Name]; e != nil && e.Pid != 0 {
		root = "/proc/" + strconv.FormatUint(uint64(e.Pid), 10) + "/root"
	}
	m.mu.Unlock()
	p, err := hostProbe(s, root, s.Health.Test)
	if err != nil {
		return m.Runner.Exec(ctx, s.Name, s.Health.Test, nil, out, out, false)
	}
	if err := p.Run(ctx, out); err != nil {
		_, _ = fmt.Fprintln(out, err)
		return 1, nil
	}
	return 0, nil
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

func (m *Supervisor) set(name string, f func(*State)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.svcs[name]; ok {
		f(&e.State)
	}
}

// States returns a copy of every service's state, by name.
func (m *Supervisor) States() []State {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []State
	for _, e := range m.svcs {
		out = append(out, e.State)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// supervise waits for the service's task to exit and restarts it by its
// policy, with exponential back-off while it keeps crashing. It ends when
// ctx does (the service was stopped, or the manager is stopping).
func (m *Supervisor) supervise(ctx context.Context, s compose.Service, t *runner.Task, done chan struct{}) {
	defer m.wg.Done()
	defer close(done)
	restarts := 0
	for {
		var code uint32 = 1
		began := time.Now()
		if t != nil {
			select {
			case ex := <-t.Exited:
				code = ex.Code
			case <-ctx.Done():
				return
			}
			m.logger().Info("exited", "service", s.Name, "status", code)
			m.set(s.Name, func(st *State) { st.Status = Exited; st.ExitCode = code; st.Pid = 0 })
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
		wait := m.backoff(restarts)
		m.set(s.Name, func(st *State) { st.Restarts++; st.Status = Restarting })
		m.logger().Info("restart scheduled", "service", s.Name, "restart", restarts, "in", wait)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return
		}
		nt, err := m.Runner.Restart(ctx, s)
		if err != nil {
			m.logger().Error("restart failed", "service", s.Name, "err", err)
			m.set(s.Name, func(st *State) { st.Status = Failed; st.LastErr = err.Error() })
			t = nil
			continue
		}
		t = nt
		m.set(s.Name, func(st *State) { st.Status = Running; st.Pid = t.Pid; st.Since = time.Now(); st.LastErr = "" })
	}
}

// ErrUnknown means no service has that name.
var ErrUnknown = errors.New("no such service")

func (m *Supervisor) lookup(name string) (*entry, error) {
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
func (m *Supervisor) stopOne(ctx context.Context, name string) error {
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
	m.set(name, func(st *State) { st.Status = Stopped; st.Pid = 0; st.Health = NoHealth })
	m.logger().Info("stopped", "service", name)
	return nil
}

// StartOne starts a known service that is not running.
func (m *Supervisor) StartOne(name string) error {
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
func (m *Supervisor) RestartOne(ctx context.Context, name string) error {
	if err := m.stopOne(ctx, name); err != nil {
		return err
	}
	m.set(name, func(st *State) { st.Restarts++ })
	return m.StartOne(name)
}

// StopOne stops a service until it is started again (or the next boot).
func (m *Supervisor) StopOne(ctx context.Context, name string) error { return m.stopOne(ctx, name) }

// RemoveOne stops a service and removes its container; it stays known.
func (m *Supervisor) RemoveOne(ctx context.Context, name string) error {
	if err := m.stopOne(ctx, name); err != nil {
		return err
	}
	if err := m.Runner.Remove(ctx, name); err != nil {
		return err
	}
	m.set(name, func(st *State) { st.Status = Removed })
	return nil
}

// Add starts services that were not known (an enabled service) in order,
// with where each came from (built-in if not given).
func (m *Supervisor) Add(defs []compose.Service, sources map[string]string) error {
	m.mu.Lock()
	for _, s := range defs {
		if _, ok := m.svcs[s.Name]; ok {
			m.mu.Unlock()
			return fmt.Errorf("service %s already exists", s.Name)
		}
	}
	ctx := m.root
	m.mu.Unlock()
	if ctx == nil {
		ctx = context.Background()
	}
	return m.Start(ctx, defs, sources)
}

// Forget stops and removes services and forgets them (a disabled service).
func (m *Supervisor) Forget(ctx context.Context, names []string) error {
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
func (m *Supervisor) StopAll(ctx context.Context) {
	m.mu.Lock()
	order := append([]string(nil), m.order...)
	m.mu.Unlock()
	for i := len(order) - 1; i >= 0; i-- {
		if err := m.stopOne(ctx, order[i]); err != nil {
			m.logger().Error("stop", "service", order[i], "err", err)
		}
	}
}

// Wait waits for the supervisors to end (after their context is cancelled).
func (m *Supervisor) Wait() { m.wg.Wait() }

// Definition returns the definition of a service the supervisor knows.
func (m *Supervisor) Definition(name string) (compose.Service, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.svcs[name]; ok {
		return e.Service, true
	}
	return compose.Service{}, false
}

// Definitions returns the definitions of every service the supervisor
// knows, by name.
func (m *Supervisor) Definitions() map[string]compose.Service {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]compose.Service, len(m.svcs))
	for n, e := range m.svcs {
		out[n] = e.Service
	}
	return out
}
