package supervisor

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rosos/ros/internal/compose"
)

// serve answers /_ping with 200 and /down with 503, over a unix socket at
// sock and over TCP (the returned server).
func serve(t *testing.T, sock string) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/_ping", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("OK")) })
	mux.HandleFunc("/down", func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "starting", http.StatusServiceUnavailable) })
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &httptest.Server{Listener: l, Config: &http.Server{Handler: mux}}
	srv.Start()
	t.Cleanup(srv.Close)
	tcp := httptest.NewServer(mux)
	t.Cleanup(tcp.Close)
	return tcp
}

func TestProbe(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "d.sock")
	tcp := serve(t, sock)
	ctx := context.Background()
	var out bytes.Buffer
	if err := (Probe{URL: "http://docker/_ping", Socket: sock}).Run(ctx, &out); err != nil {
		t.Fatalf("over the socket: %v", err)
	}
	if !strings.Contains(out.String(), "200 OK") {
		t.Errorf("output %q", out.String())
	}
	if err := (Probe{URL: tcp.URL + "/_ping", Timeout: 5 * time.Second}).Run(ctx, &out); err != nil {
		t.Fatalf("over TCP: %v", err)
	}
	for _, c := range []struct{ url, socket, want string }{
		{"http://docker/down", sock, "503 Service Unavailable: starting"},
		{"http://docker/_ping", filepath.Join(t.TempDir(), "none.sock"), "no such file"},
		{"docker/_ping", sock, "not an http:// or https:// URL"},
		{"ftp://docker/_ping", sock, "not an http:// or https:// URL"},
	} {
		err := Probe{URL: c.url, Socket: c.socket}.Run(ctx, &out)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("probe %s via %q: err = %v, want %q", c.url, c.socket, err, c.want)
		}
	}
}

func TestProbeCommand(t *testing.T) {
	for _, c := range []struct {
		test []string
		want Probe
		ok   bool
	}{
		{[]string{"ros", "probe", "--unix", "/var/run/docker.sock", "http://docker/_ping"}, Probe{URL: "http://docker/_ping", Socket: "/var/run/docker.sock"}, true},
		{[]string{"/usr/bin/ros", "probe", "--timeout=3s", "http://127.0.0.1:8080/healthz"}, Probe{URL: "http://127.0.0.1:8080/healthz", Timeout: 3 * time.Second}, true},
		{[]string{"ros", "probe", "http://a/", "--unix=/s"}, Probe{URL: "http://a/", Socket: "/s"}, true},
		{[]string{"ros", "probe"}, Probe{}, false},
		{[]string{"ros", "probe", "--unix", "/s"}, Probe{}, false},                 // no URL
		{[]string{"ros", "probe", "--unix"}, Probe{}, false},                       // flag without its value
		{[]string{"ros", "probe", "--insecure", "x", "http://a/"}, Probe{}, false}, // a flag it does not know
		{[]string{"ros", "probe", "--timeout", "soon", "http://a/"}, Probe{}, false},
		{[]string{"ros", "probe", "http://a/", "http://b/"}, Probe{}, false},
		{[]string{"curl", "-f", "http://a/"}, Probe{}, false},
		{[]string{"CMD-SHELL", "ros probe http://a/"}, Probe{}, false},
	} {
		got, ok := probeCommand(c.test)
		if ok != c.ok || got != c.want {
			t.Errorf("probeCommand(%q) = %+v, %v; want %+v, %v", c.test, got, ok, c.want, c.ok)
		}
	}
}

// TestHostProbe makes a container root with ros in it and the docker
// socket behind /var/run -> /run, an absolute symlink that must be
// followed inside the root, not on the host.
func TestHostProbe(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"usr/bin", "run"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "usr/bin/ros"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "var"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/run", filepath.Join(root, "var/run")); err != nil {
		t.Fatal(err)
	}
	tcp := serve(t, filepath.Join(root, "run/d.sock"))
	host := compose.Service{Name: "docker", HostNetwork: true}
	ctx := context.Background()

	p, err := hostProbe(host, root, []string{"ros", "probe", "--unix", "/var/run/d.sock", "http://docker/_ping"})
	if err != nil {
		t.Fatalf("over the container's socket: %v", err)
	}
	if want := filepath.Join(root, "run/d.sock"); p.Socket != want {
		t.Errorf("socket %q, want %q", p.Socket, want)
	}
	var out bytes.Buffer
	if err := p.Run(ctx, &out); err != nil {
		t.Errorf("probe over %s: %v", p.Socket, err)
	}
	p, err = hostProbe(host, root, []string{"/usr/bin/ros", "probe", tcp.URL + "/_ping"})
	if err != nil {
		t.Fatalf("over TCP with host networking: %v", err)
	}
	if err := p.Run(ctx, &out); err != nil {
		t.Errorf("probe %s: %v", p.URL, err)
	}

	// Each of these runs in the container as it is.
	noRos := t.TempDir()
	for _, c := range []struct {
		name string
		s    compose.Service
		root string
		test []string
	}{
		{"not ros probe", host, root, []string{"curl", "-f", "http://127.0.0.1/"}},
		{"no task", host, "", []string{"ros", "probe", "http://127.0.0.1/"}},
		{"no ros in the container", host, noRos, []string{"ros", "probe", "http://127.0.0.1/"}},
		{"ros elsewhere than test[0] names", host, root, []string{"/usr/local/bin/ros", "probe", "http://127.0.0.1/"}},
		{"TCP in its own network namespace", compose.Service{Name: "web"}, root, []string{"ros", "probe", tcp.URL}},
		{"a name the container resolves", host, root, []string{"ros", "probe", "http://db.internal:8080/"}},
		{"a relative socket", host, root, []string{"ros", "probe", "--unix", "run/d.sock", "http://d/"}},
	} {
		if _, err := hostProbe(c.s, c.root, c.test); !errors.Is(err, errInContainer) {
			t.Errorf("%s: err = %v, want errInContainer", c.name, err)
		}
	}
}
