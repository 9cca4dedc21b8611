// Package api serves the service manager's API on a unix socket for root:
// HTTP and JSON in front of a Backend (the service manager), with the wire
// types of package client. Long operations stream their progress.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/rosos/ros/client"
)

// ErrNotFound marks an error about something that does not exist (a
// service): the reply is 404.
var ErrNotFound = errors.New("not found")

// Backend is what the API serves.
type Backend interface {
	Services() client.ServiceList
	// Action is start, stop, restart or rm of one service.
	Action(ctx context.Context, name, action string) error
	// Up starts the named services (every known one when none are named).
	Up(ctx context.Context, names []string) ([]string, error)
	Enable(ctx context.Context, req client.EnableRequest) (client.Enabled, error)
	Disable(ctx context.Context, name string) (client.Enabled, error)
	Export(full, private bool) map[string]any
	Get(key string) (client.ConfigValue, error)
	Reconfigure(ctx context.Context, req client.ReconfigureRequest) (client.Plan, error)
	Slots() ([]client.Slot, error)
	// Upgrade and Install write their progress on out and return what
	// they did (the slot, the device).
	Upgrade(ctx context.Context, req client.UpgradeRequest, out io.Writer) (string, error)
	Rollback() (string, error)
	Install(ctx context.Context, req client.InstallRequest, out io.Writer) (string, error)
	// Reboot asks for a clean reboot, after an upgrade, a rollback or an
	// install that did not say no_reboot.
	Reboot()
}

// Server serves a Backend.
type Server struct {
	Backend Backend
	Log     *slog.Logger
	// RebootDelay is how long after the reply a reboot is asked for.
	RebootDelay time.Duration
}

// Handler returns the API's routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/services", s.list)
	mux.HandleFunc("POST /v1/services/{name}/{action}", s.action)
	mux.HandleFunc("POST /v1/up", call(func(ctx context.Context, req struct {
		Names []string `json:"names"`
	}) (map[string]any, error) {
		names, err := s.Backend.Up(ctx, req.Names)
		return map[string]any{"ok": names}, err
	}))
	mux.HandleFunc("POST /v1/enable", call(s.Backend.Enable))
	mux.HandleFunc("POST /v1/disable", call(func(ctx context.Context, req struct {
		Name string `json:"name"`
	}) (client.Enabled, error) {
		return s.Backend.Disable(ctx, req.Name)
	}))
	mux.HandleFunc("GET /v1/config", s.export)
	mux.HandleFunc("GET /v1/config/key", s.get)
	mux.HandleFunc("POST /v1/config", call(s.Backend.Reconfigure))
	mux.HandleFunc("GET /v1/os", s.slots)
	mux.HandleFunc("POST /v1/os/upgrade", s.upgrade)
	mux.HandleFunc("POST /v1/os/rollback", s.rollback)
	mux.HandleFunc("POST /v1/install", s.install)
	return mux
}

// Serve listens on path (mode 0600) until ctx ends.
func (s *Server) Serve(ctx context.Context, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("api: %w", err)
	}
	_ = os.Remove(path)
	l, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("api: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		_ = l.Close()
		return fmt.Errorf("api: %w", err)
	}
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("api: %w", err)
	}
	return nil
}

func reply(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, err error) {
	code := http.StatusBadRequest
	if errors.Is(err, ErrNotFound) {
		code = http.StatusNotFound
	}
	reply(w, code, client.Result{Error: err.Error()})
}

// decode reads a request's JSON body into v; it says so when it fails.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(r.Body).Decode(v); err != nil && !errors.Is(err, io.EOF) {
		fail(w, fmt.Errorf("request: %w", err))
		return false
	}
	return true
}

// detached is the request's context without its cancellation: a change
// that began is finished even if the client goes away.
func detached(r *http.Request) context.Context { return context.WithoutCancel(r.Context()) }

// call makes a handler of f: the request's JSON body in, f's result out
// as JSON, or its error.
func call[Req, Res any](f func(context.Context, Req) (Res, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req Req
		if !decode(w, r, &req) {
			return
		}
		res, err := f(detached(r), req)
		if err != nil {
			fail(w, err)
			return
		}
		reply(w, http.StatusOK, res)
	}
}

func (s *Server) list(w http.ResponseWriter, _ *http.Request) {
	reply(w, http.StatusOK, s.Backend.Services())
}

func (s *Server) action(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := s.Backend.Action(detached(r), name, r.PathValue("action")); err != nil {
		fail(w, err)
		return
	}
	reply(w, http.StatusOK, client.Result{OK: name})
}

func (s *Server) export(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	reply(w, http.StatusOK, s.Backend.Export(q.Has("full"), q.Has("private")))
}

func (s *Server) get(w http.ResponseWriter, r *http.Request) {
	v, err := s.Backend.Get(r.URL.Query().Get("key"))
	if err != nil {
		fail(w, err)
		return
	}
	reply(w, http.StatusOK, v)
}

func (s *Server) slots(w http.ResponseWriter, _ *http.Request) {
	slots, err := s.Backend.Slots()
	if err != nil {
		fail(w, err)
		return
	}
	reply(w, http.StatusOK, slots)
}

func (s *Server) upgrade(w http.ResponseWriter, r *http.Request) {
	var req client.UpgradeRequest
	if !decode(w, r, &req) {
		return
	}
	s.stream(w, req.NoReboot, func(out io.Writer) (string, error) {
		return s.Backend.Upgrade(detached(r), req, out)
	})
}

func (s *Server) install(w http.ResponseWriter, r *http.Request) {
	var req client.InstallRequest
	if !decode(w, r, &req) {
		return
	}
	s.stream(w, req.NoReboot, func(out io.Writer) (string, error) {
		return s.Backend.Install(detached(r), req, out)
	})
}

func (s *Server) rollback(w http.ResponseWriter, r *http.Request) {
	var req client.RollbackRequest
	if !decode(w, r, &req) {
		return
	}
	slot, err := s.Backend.Rollback()
	if err != nil {
		fail(w, err)
		return
	}
	reply(w, http.StatusOK, client.Result{OK: slot})
	if !req.NoReboot {
		s.rebootLater()
	}
}

// flushWriter sends each write to the client at once.
type flushWriter struct {
	w http.ResponseWriter
	f http.Flusher
}

func (fw flushWriter) Write(p []byte) (int, error) {
	n, err := fw.w.Write(p)
	if fw.f != nil {
		fw.f.Flush()
	}
	return n, err
}

// stream runs op, sending its progress lines as they come; the last line
// is a client.Result. On success, it reboots unless noReboot.
func (s *Server) stream(w http.ResponseWriter, noReboot bool, op func(out io.Writer) (string, error)) {
	fl, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusOK)
	out := flushWriter{w, fl}
	res, err := op(out)
	if err != nil {
		_ = json.NewEncoder(out).Encode(client.Result{Error: err.Error()})
		return
	}
	_ = json.NewEncoder(out).Encode(client.Result{OK: res})
	if !noReboot {
		s.rebootLater()
	}
}

// rebootLater asks for the reboot after the reply went.
func (s *Server) rebootLater() {
	go func() {
		time.Sleep(s.RebootDelay)
		s.Backend.Reboot()
	}()
}
