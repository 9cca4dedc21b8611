package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestProbe(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/_ping", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("OK")) })
	mux.HandleFunc("/down", func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "starting", http.StatusServiceUnavailable) })
	sock := filepath.Join(t.TempDir(), "d.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &httptest.Server{Listener: l, Config: &http.Server{Handler: mux}}
	srv.Start()
	defer srv.Close()
	tcp := httptest.NewServer(mux)
	defer tcp.Close()

	ctx := context.Background()
	var out bytes.Buffer
	if err := probe(ctx, &out, "http://docker/_ping", sock, 5*time.Second); err != nil {
		t.Fatalf("over the socket: %v", err)
	}
	if !strings.Contains(out.String(), "200 OK") {
		t.Errorf("output %q", out.String())
	}
	if err := probe(ctx, &out, tcp.URL+"/_ping", "", 5*time.Second); err != nil {
		t.Fatalf("over TCP: %v", err)
	}
	for _, c := range []struct{ url, socket, want string }{
		{"http://docker/down", sock, "503 Service Unavailable: starting"},
		{"http://docker/_ping", filepath.Join(t.TempDir(), "none.sock"), "no such file"},
		{"docker/_ping", sock, "not an http:// or https:// URL"},
		{"ftp://docker/_ping", sock, "not an http:// or https:// URL"},
	} {
		err := probe(ctx, &out, c.url, c.socket, 5*time.Second)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("probe %s via %q: err = %v, want %q", c.url, c.socket, err, c.want)
		}
	}
}
