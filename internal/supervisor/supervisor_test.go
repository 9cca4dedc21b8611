package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rosos/ros/internal/compose"
	"github.com/rosos/ros/internal/runner"
)

// fakeRunner runs nothing: it records what the supervisor asks and lets a
// test end a service's task when it wants.
type fakeRunner struct {
	mu       sync.Mutex
	calls    []string                    // "start a", "restart a", "stop a", "rm a"
	tasks    map[string]chan runner.Exit // the running task of each service
	pid      uint32
	startErr map[string]error         // Start of that service fails
	running  map[string]bool          // already running when the supervisor starts: adopted
	ran      map[string]bool          // ran and ended earlier in this boot
	health   func(name string) int    // Exec's exit status (a healthcheck)
	started  chan string              // gets each start and restart
	gate     map[string]chan struct{} // Start of that service waits for it to close
}

func newFake() *fakeRunner {
	return &fakeRunner{tasks: map[string]chan runner.Exit{}, startErr: map[string]error{}, running: map[string]bool{},
		ran: map[string]bool{}, started: make(chan string, 100)}
}

func (f *fakeRunner) record(call string) {
	f.mu.Lock()
	f.calls = append(f.calls, call)
	f.mu.Unlock()
}

func (f *fakeRunner) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *fakeRunner) task(name string, adopted bool) *runner.Task {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch := make(chan runner.Exit, 1)
	f.tasks[name] = ch
	f.pid++
	return &runner.Task{Name: name, Pid: 100 + f.pid, Adopted: adopted, Exited: ch}
}

func (f *fakeRunner) Start(_ context.Context, s compose.Service) (*runner.Task, error) {
	f.mu.Lock()
	err, adopt, gate := f.startErr[s.Name], f.running[s.Name], f.gate[s.Name]
	f.mu.Unlock()
	if gate != nil {
		<-gate
	}
	if adopt {
		f.record("adopt " + s.Name)
		return f.task(s.Name, true), nil
	}
	f.record("start " + s.Name)
	// started is told once the task exists, so that a test can end it.
	defer func() { f.started <- s.Name }()
	if err != nil {
		return nil, err
	}
	if s.CreateOnly {
		return nil, nil
	}
	return f.task(s.Name, false), nil
}

func (f *fakeRunner) Restart(_ context.Context, s compose.Service) (*runner.Task, error) {
	f.record("restart " + s.Name)
	defer func() { f.started <- s.Name }()
	f.mu.Lock()
	err := f.startErr[s.Name]
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return f.task(s.Name, false), nil
}

func (f *fakeRunner) Ran(_ context.Context, s compose.Service) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ran[s.Name]
}

func (f *fakeRunner) Stop(_ context.Context, name string, _ syscall.Signal, _ time.Duration) error {
	f.record("stop " + name)
	f.exit(name, 143)
	return nil
}

func (f *fakeRunner) Remove(_ context.Context, name string) error {
	f.record("rm " + name)
	return nil
}

func (f *fakeRunner) Exec(_ context.Context, name string, _ []string, _ io.Reader, _, _ io.Writer, _ bool) (uint32, error) {
	if f.health == nil {
		return 0, nil
	}
	return uint32(f.health(name)), nil
}

func (f *fakeRunner) Check(context.Context, string) error { return nil }

// exit ends the running task of name with code.
func (f *fakeRunner) exit(name string, code uint32) {
	f.mu.Lock()
	ch := f.tasks[name]
	delete(f.tasks, name)
	f.mu.Unlock()
	if ch != nil {
		ch <- runner.Exit{Code: code}
	}
}

func newSupervisor(f *fakeRunner) *Supervisor {
	return &Supervisor{Runner: f, Backoff: func(int) time.Duration { return time.Millisecond }, ConditionWait: 5 * time.Second}
}

func svc(name string, mod ...func(*compose.Service)) compose.Service {
	s := compose.Service{Name: name, Image: "rosos/" + name, Detach: true, Restart: "always"}
	for _, m := range mod {
		m(&s)
	}
	return s
}

// waitFor polls cond until it holds or a few seconds pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (m *Supervisor) state(name string) State {
	for _, st := range m.States() {
		if st.Name == name {
			return st
		}
	}
	return State{}
}

func stop(t *testing.T, ctx context.CancelFunc, m *Supervisor) {
	t.Cleanup(func() {
		ctx()
		m.Wait()
	})
}

func TestStartsInDependencyOrder(t *testing.T) {
	f := newFake()
	m := newSupervisor(f)
	ctx, cancel := context.WithCancel(context.Background())
	stop(t, cancel, m)
	defs := []compose.Service{
		svc("console", func(s *compose.Service) { s.After = []string{"network"} }),
		svc("network", func(s *compose.Service) { s.DependsOn = []string{"udev"} }),
		svc("udev"),
	}
	if err := m.Start(ctx, defs, map[string]string{"console": "catalog"}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(f.Calls(), ","); got != "start udev,start network,start console" {
		t.Fatalf("calls %s", got)
	}
	if st := m.state("console"); st.Status != Running || st.Source != "catalog" || st.Pid == 0 {
		t.Fatalf("console %+v", st)
	}
	if st := m.state("udev"); st.Source != "built-in" {
		t.Fatalf("udev source %q", st.Source)
	}
}

func TestIndependentServicesStartTogether(t *testing.T) {
	f := newFake()
	gate := make(chan struct{})
	f.gate = map[string]chan struct{}{"a": gate}
	m := newSupervisor(f)
	ctx, cancel := context.WithCancel(context.Background())
	stop(t, cancel, m)
	defs := []compose.Service{
		svc("a"), // slow to start
		svc("b"), // waits for nobody
		svc("c", func(s *compose.Service) { s.After = []string{"a"} }),
	}
	done := make(chan error, 1)
	go func() { done <- m.Start(ctx, defs, nil) }()
	// b starts while a is still starting; c waits for a.
	select {
	case n := <-f.started:
		if n != "b" {
			t.Fatalf("%s started first, want b", n)
		}
	case <-time.After(5 * time.Second):
		close(gate)
		t.Fatalf("b did not start while a was starting: calls %v", f.Calls())
	}
	if slices.Contains(f.Calls(), "start c") {
		t.Fatalf("c started before a: calls %v", f.Calls())
	}
	close(gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	calls := f.Calls()
	if i, j := slices.Index(calls, "start a"), slices.Index(calls, "start c"); i < 0 || j < i {
		t.Fatalf("calls %v: c must start after a", calls)
	}
	for _, n := range []string{"a", "b", "c"} {
		if st := m.state(n); st.Status != Running {
			t.Fatalf("%s %+v", n, st)
		}
	}
}

func TestRestartPolicies(t *testing.T) {
	for _, tc := range []struct {
		policy  string
		code    uint32
		restart bool
	}{
		{"always", 0, true},
		{"unless-stopped", 0, true},
		{"on-failure", 1, true},
		{"on-failure", 0, false},
		{"no", 1, false},
		{"", 1, false},
	} {
		t.Run(fmt.Sprintf("%s-%d", tc.policy, tc.code), func(t *testing.T) {
			f := newFake()
			m := newSupervisor(f)
			ctx, cancel := context.WithCancel(context.Background())
			stop(t, cancel, m)
			if err := m.Start(ctx, []compose.Service{svc("a", func(s *compose.Service) { s.Restart = tc.policy })}, nil); err != nil {
				t.Fatal(err)
			}
			<-f.started
			f.exit("a", tc.code)
			if tc.restart {
				waitFor(t, "a restart", func() bool { st := m.state("a"); return st.Status == Running && st.Restarts == 1 })
				if !slices.Contains(f.Calls(), "restart a") {
					t.Fatalf("calls %v", f.Calls())
				}
				return
			}
			waitFor(t, "a exited", func() bool { return m.state("a").Status == Exited })
			time.Sleep(20 * time.Millisecond) // a restart would come within the 1 ms back-off
			if st := m.state("a"); st.Restarts != 0 || st.ExitCode != tc.code || slices.Contains(f.Calls(), "restart a") {
				t.Fatalf("state %+v, calls %v", st, f.Calls())
			}
		})
	}
}

func TestOnFailureLimitAndBackoff(t *testing.T) {
	f := newFake()
	m := newSupervisor(f)
	var mu sync.Mutex
	var waits []int
	m.Backoff = func(n int) time.Duration {
		mu.Lock()
		waits = append(waits, n)
		mu.Unlock()
		return time.Millisecond
	}
	ctx, cancel := context.WithCancel(context.Background())
	stop(t, cancel, m)
	if err := m.Start(ctx, []compose.Service{svc("a", func(s *compose.Service) { s.Restart = "on-failure:2" })}, nil); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		<-f.started
		f.exit("a", 2)
	}
	waitFor(t, "a given up", func() bool { return m.state("a").Status == Exited && m.state("a").Restarts == 2 })
	time.Sleep(20 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(waits, []int{1, 2}) || m.state("a").Restarts != 2 {
		t.Fatalf("back-off asked for restarts %v, state %+v", waits, m.state("a"))
	}
	// The default back-off doubles from a second up to its bound.
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 10: time.Minute} {
		if got := Backoff(n, time.Minute); got != want {
			t.Errorf("Backoff(%d) = %s, want %s", n, got, want)
		}
	}
}

func TestFailedStartIsRetried(t *testing.T) {
	f := newFake()
	f.startErr["a"] = errors.New("image rosos/a: not found")
	m := newSupervisor(f)
	ctx, cancel := context.WithCancel(context.Background())
	stop(t, cancel, m)
	if err := m.Start(ctx, []compose.Service{svc("a"), svc("b")}, nil); err != nil {
		t.Fatal(err)
	}
	// b starts although a failed.
	if st := m.state("b"); st.Status != Running {
		t.Fatalf("b %+v", st)
	}
	// a's first start and its first retry, also failing (b's start comes
	// in between or not: they start at the same time).
	for n := 0; n < 2; {
		if <-f.started == "a" {
			n++
		}
	}
	// Failed with the error, and on to its next try (1 ms back-off).
	if st := m.state("a"); (st.Status != Failed && st.Status != Restarting) || st.Restarts < 1 || !strings.Contains(st.LastErr, "not found") {
		t.Fatalf("a %+v", st)
	}
	f.mu.Lock()
	delete(f.startErr, "a")
	f.mu.Unlock()
	waitFor(t, "a running", func() bool { return m.state("a").Status == Running })
	if st := m.state("a"); st.LastErr != "" {
		t.Fatalf("a %+v", st)
	}
}

func TestConditions(t *testing.T) {
	f := newFake()
	m := newSupervisor(f)
	ctx, cancel := context.WithCancel(context.Background())
	stop(t, cancel, m)
	healthy := make(chan struct{})
	f.health = func(name string) int {
		select {
		case <-healthy:
			return 0
		default:
			return 1
		}
	}
	check := &compose.Health{Test: []string{"true"}, Interval: 5 * time.Millisecond, Timeout: time.Second, Retries: 3}
	defs := []compose.Service{
		svc("db", func(s *compose.Service) { s.Health = check }),
		svc("migrate", func(s *compose.Service) { s.Detach, s.Restart = false, "no" }),
		svc("app", func(s *compose.Service) {
			s.DependsOn = []string{"db", "migrate"}
			s.Conditions = map[string]string{"db": "service_healthy", "migrate": "service_completed_successfully"}
		}),
	}
	done := make(chan error, 1)
	go func() { done <- m.Start(ctx, defs, nil) }()
	<-f.started // db
	<-f.started // migrate, a one-shot: Start waits for its end
	f.exit("migrate", 0)
	select {
	case name := <-f.started:
		t.Fatalf("%s started before db was healthy", name)
	case <-time.After(50 * time.Millisecond):
	}
	if st := m.state("db"); st.Health != HealthStarting && st.Health != Unhealthy {
		t.Fatalf("db health %q", st.Health)
	}
	close(healthy)
	if name := <-f.started; name != "app" {
		t.Fatalf("started %s", name)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	waitFor(t, "db healthy", func() bool { return m.state("db").Health == Healthy })
	if st := m.state("migrate"); st.Status != Exited || st.ExitCode != 0 {
		t.Fatalf("migrate %+v", st)
	}
}

func TestFailedOneShotHoldsBackUntilTheBound(t *testing.T) {
	f := newFake()
	m := newSupervisor(f)
	m.ConditionWait = 30 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	stop(t, cancel, m)
	defs := []compose.Service{
		svc("migrate", func(s *compose.Service) { s.Detach, s.Restart = false, "no" }),
		svc("app", func(s *compose.Service) {
			s.DependsOn = []string{"migrate"}
			s.Conditions = map[string]string{"migrate": "service_completed_successfully"}
		}),
	}
	go func() {
		<-f.started
		f.exit("migrate", 3)
	}()
	began := time.Now()
	if err := m.Start(ctx, defs, nil); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(began); waited < m.ConditionWait {
		t.Fatalf("app started %s after a failed one-shot, before the %s bound", waited, m.ConditionWait)
	}
	if st := m.state("app"); st.Status != Running {
		t.Fatalf("app %+v", st)
	}
}

func TestHealthTransitions(t *testing.T) {
	f := newFake()
	var mu sync.Mutex
	code := 0
	f.health = func(string) int {
		mu.Lock()
		defer mu.Unlock()
		return code
	}
	m := newSupervisor(f)
	ctx, cancel := context.WithCancel(context.Background())
	stop(t, cancel, m)
	check := &compose.Health{Test: []string{"true"}, Interval: 5 * time.Millisecond, Timeout: time.Second, Retries: 2}
	if err := m.Start(ctx, []compose.Service{svc("a", func(s *compose.Service) { s.Health = check })}, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "healthy", func() bool { return m.state("a").Health == Healthy })
	mu.Lock()
	code = 1
	mu.Unlock()
	waitFor(t, "unhealthy", func() bool { return m.state("a").Health == Unhealthy })
	mu.Lock()
	code = 0
	mu.Unlock()
	waitFor(t, "healthy again", func() bool { return m.state("a").Health == Healthy })
}

func TestAdoptionAfterRestart(t *testing.T) {
	f := newFake()
	f.running["net"] = true // still running from the manager's first start
	f.ran["bootstrap"] = true
	m := newSupervisor(f)
	m.Restarted = true
	ctx, cancel := context.WithCancel(context.Background())
	stop(t, cancel, m)
	defs := []compose.Service{
		svc("bootstrap", func(s *compose.Service) { s.Detach, s.Restart = false, "no" }),
		svc("net"),
		svc("ntp"),
	}
	done := make(chan error, 1)
	go func() { done <- m.Start(ctx, defs, nil) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("Start did not return (it ran the one-shot again and waits for it): calls %v", f.Calls())
	}
	calls := f.Calls()
	slices.Sort(calls)
	if got := strings.Join(calls, ","); got != "adopt net,start ntp" {
		t.Fatalf("calls %s: the one-shot must not run again, the running service must be adopted", got)
	}
	if st := m.state("bootstrap"); st.Status != Exited {
		t.Fatalf("bootstrap %+v", st)
	}
	if st := m.state("net"); st.Status != Running || st.Pid == 0 {
		t.Fatalf("net %+v", st)
	}
	// The adopted task is supervised: its end restarts it.
	f.exit("net", 1)
	waitFor(t, "net restarted", func() bool { return slices.Contains(f.Calls(), "restart net") })
}

func TestStopStartRemoveForgetAndStopAll(t *testing.T) {
	f := newFake()
	m := newSupervisor(f)
	ctx, cancel := context.WithCancel(context.Background())
	stop(t, cancel, m)
	if err := m.Start(ctx, []compose.Service{svc("a"), svc("b", func(s *compose.Service) { s.After = []string{"a"} })}, nil); err != nil {
		t.Fatal(err)
	}
	if err := m.StopOne(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	if st := m.state("a"); st.Status != Stopped || slices.Contains(f.Calls(), "restart a") {
		t.Fatalf("a %+v, calls %v: a stopped service must stay stopped", st, f.Calls())
	}
	if err := m.StartOne("a"); err != nil {
		t.Fatal(err)
	}
	if st := m.state("a"); st.Status != Running {
		t.Fatalf("a %+v", st)
	}
	if err := m.StopOne(ctx, "nope"); !errors.Is(err, ErrUnknown) {
		t.Fatalf("unknown service: %v", err)
	}
	if err := m.Add([]compose.Service{svc("a")}, nil); err == nil {
		t.Fatal("Add of a known service")
	}
	if err := m.Add([]compose.Service{svc("c")}, map[string]string{"c": "file"}); err != nil {
		t.Fatal(err)
	}
	if err := m.Forget(ctx, []string{"c"}); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.Definition("c"); ok || !slices.Contains(f.Calls(), "rm c") {
		t.Fatalf("c not forgotten: calls %v", f.Calls())
	}
	f.mu.Lock()
	f.calls = nil
	f.mu.Unlock()
	m.StopAll(ctx)
	if got := strings.Join(f.Calls(), ","); got != "stop b,stop a" {
		t.Fatalf("StopAll: %s, want the reverse of the start order", got)
	}
}

func TestCreateOnly(t *testing.T) {
	f := newFake()
	m := newSupervisor(f)
	ctx, cancel := context.WithCancel(context.Background())
	stop(t, cancel, m)
	if err := m.Start(ctx, []compose.Service{svc("data", func(s *compose.Service) { s.CreateOnly = true })}, nil); err != nil {
		t.Fatal(err)
	}
	if st := m.state("data"); st.Status != Created {
		t.Fatalf("data %+v", st)
	}
}
