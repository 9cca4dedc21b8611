package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rosos/ros/client"
	"github.com/rosos/ros/config"
)

// fakeBackend answers the API from memory.
type fakeBackend struct {
	mu      sync.Mutex
	actions []string
	reboots int
}

func (f *fakeBackend) Services() client.ServiceList {
	return client.ServiceList{Services: []client.Service{{Name: "console", Status: "running", Pid: 42}}, Catalog: []string{"debug-shell"}}
}

func (f *fakeBackend) Action(_ context.Context, name, action string) error {
	if name != "console" {
		return fmt.Errorf("service %s: no such service (%w)", name, ErrNotFound)
	}
	f.mu.Lock()
	f.actions = append(f.actions, action+" "+name)
	f.mu.Unlock()
	return nil
}

func (f *fakeBackend) Up(_ context.Context, names []string) ([]string, error) {
	f.mu.Lock()
	f.actions = append(f.actions, "up "+strings.Join(names, " "))
	f.mu.Unlock()
	return names, nil
}

func (f *fakeBackend) Enable(_ context.Context, req client.EnableRequest) (client.Enabled, error) {
	return client.Enabled{Enabled: req.Ref, Services: []string{req.Ref + "-1"}}, nil
}

func (f *fakeBackend) Disable(_ context.Context, name string) (client.Enabled, error) {
	return client.Enabled{Disabled: name, Services: []string{name}}, nil
}

func (f *fakeBackend) Export(full, private bool) map[string]any {
	return map[string]any{"full": full, "private": private}
}

func (f *fakeBackend) Get(key string) (client.ConfigValue, error) {
	if key == "secret" {
		return client.ConfigValue{}, errors.New("secret: never printed")
	}
	return client.ConfigValue{Value: []any{"1.1.1.1"}, Set: true}, nil
}

func (f *fakeBackend) Reconfigure(_ context.Context, req client.ReconfigureRequest) (client.Plan, error) {
	return client.Plan{Changes: []config.Change{{Key: req.Key, New: req.Value}}, Live: []string{req.Key}, DryRun: req.DryRun}, nil
}

func (f *fakeBackend) Slots() ([]client.Slot, error) {
	return []client.Slot{{Slot: "A", Running: true, Version: "v1"}, {Slot: "B"}}, nil
}

func (f *fakeBackend) Upgrade(_ context.Context, req client.UpgradeRequest, out io.Writer) (string, error) {
	fmt.Fprintln(out, "checking layers")
	fmt.Fprintln(out, "writing slot B")
	if req.File == "bad" {
		return "", errors.New("refused, nothing written")
	}
	return "B", nil
}

func (f *fakeBackend) Rollback() (string, error) { return "B", nil }

func (f *fakeBackend) Install(_ context.Context, req client.InstallRequest, out io.Writer) (string, error) {
	fmt.Fprintln(out, "partitioning")
	return req.Device, nil
}

func (f *fakeBackend) Reboot() {
	f.mu.Lock()
	f.reboots++
	f.mu.Unlock()
}

func (f *fakeBackend) rebooted() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reboots
}

// serve runs the API on a socket in a temporary directory and returns a
// client of it.
func serve(t *testing.T) (*client.Client, *fakeBackend) {
	t.Helper()
	f := &fakeBackend{}
	sock := filepath.Join(t.TempDir(), "ros.sock")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- (&Server{Backend: f}).Serve(ctx, sock) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	c := client.New(sock)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := c.Services(context.Background()); err == nil {
			return c, f
		} else if time.Now().After(deadline) {
			t.Fatalf("the API did not come up: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestClientAndServerAgree(t *testing.T) {
	c, f := serve(t)
	ctx := context.Background()
	l, err := c.Services(ctx)
	if err != nil || len(l.Services) != 1 || l.Services[0].Pid != 42 || l.Catalog[0] != "debug-shell" {
		t.Fatalf("services %+v %v", l, err)
	}
	if err := c.Action(ctx, "console", "restart"); err != nil {
		t.Fatal(err)
	}
	if err := c.Action(ctx, "nope", "stop"); err == nil || !strings.Contains(err.Error(), "no such service") {
		t.Fatalf("unknown service: %v", err)
	}
	if err := c.Up(ctx, []string{"console"}); err != nil {
		t.Fatal(err)
	}
	if en, err := c.Enable(ctx, client.EnableRequest{Ref: "web"}); err != nil || en.Enabled != "web" || en.Services[0] != "web-1" {
		t.Fatalf("enable %+v %v", en, err)
	}
	if dis, err := c.Disable(ctx, "web"); err != nil || dis.Disabled != "web" {
		t.Fatalf("disable %+v %v", dis, err)
	}
	if doc, err := c.Export(ctx, true, false); err != nil || doc["full"] != true || doc["private"] != false {
		t.Fatalf("export %v %v", doc, err)
	}
	if v, err := c.Get(ctx, "rancher.network.dns.nameservers"); err != nil || !v.Set {
		t.Fatalf("get %+v %v", v, err)
	}
	if _, err := c.Get(ctx, "secret"); err == nil || err.Error() != "secret: never printed" {
		t.Fatalf("get secret: %v", err)
	}
	p, err := c.Reconfigure(ctx, client.ReconfigureRequest{Key: "hostname", Value: "n1", DryRun: true})
	if err != nil || !p.DryRun || p.Changes[0].Key != "hostname" || p.Live[0] != "hostname" {
		t.Fatalf("reconfigure %+v %v", p, err)
	}
	if s, err := c.Slots(ctx); err != nil || len(s) != 2 || !s[0].Running {
		t.Fatalf("slots %+v %v", s, err)
	}
	if slot, err := c.Rollback(ctx, client.RollbackRequest{NoReboot: true}); err != nil || slot != "B" {
		t.Fatalf("rollback %q %v", slot, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if strings.Join(f.actions, ",") != "restart console,up console" {
		t.Fatalf("actions %v", f.actions)
	}
}

func TestStreamedOperations(t *testing.T) {
	c, f := serve(t)
	ctx := context.Background()
	var out bytes.Buffer
	slot, err := c.Upgrade(ctx, client.UpgradeRequest{File: "good", NoReboot: true}, &out)
	if err != nil || slot != "B" || out.String() != "checking layers\nwriting slot B\n" {
		t.Fatalf("upgrade %q %v, progress %q", slot, err, out.String())
	}
	out.Reset()
	if _, err := c.Upgrade(ctx, client.UpgradeRequest{File: "bad"}, &out); err == nil || err.Error() != "refused, nothing written" {
		t.Fatalf("refused upgrade: %v", err)
	}
	if !strings.Contains(out.String(), "writing slot B") {
		t.Fatalf("the progress before the refusal is lost: %q", out.String())
	}
	if dev, err := c.Install(ctx, client.InstallRequest{Device: "/dev/vdb"}, io.Discard); err != nil || dev != "/dev/vdb" {
		t.Fatalf("install %q %v", dev, err)
	}
	// Only the install that succeeded without no_reboot reboots.
	deadline := time.Now().Add(5 * time.Second)
	for f.rebooted() != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	if n := f.rebooted(); n != 1 {
		t.Fatalf("%d reboots, want 1", n)
	}
}

func TestReadStreamWithoutResult(t *testing.T) {
	if _, err := client.ReadStream(strings.NewReader("writing\n"), io.Discard); err == nil || !strings.Contains(err.Error(), "without a result") {
		t.Fatalf("a stream cut short: %v", err)
	}
}
