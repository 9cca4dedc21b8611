package services

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rosos/ros/config"
)

// Socket is the service manager's API, for root only.
const Socket = "/run/ros/ros.sock"

// ListReply is GET /v1/services.
type ListReply struct {
	Services []State `json:"services"`
	// Catalog lists the catalog's services that are not enabled.
	Catalog []string `json:"catalog"`
}

// EnableRequest is POST /v1/enable.
type EnableRequest struct {
	Ref     string `json:"ref"`               // catalog name, URL, or the file's path (for messages)
	Name    string `json:"name,omitempty"`    // the name to enable it as (default: from ref)
	Content []byte `json:"content,omitempty"` // a local file's content, read by the client
}

// API serves the manager's API on a unix socket.
type API struct {
	M *Manager
	// Env is the environment compose files are interpolated with.
	Env  map[string]string
	Node *NodeConfig
	srv  *http.Server
}

// Serve listens on path (mode 0600) until ctx ends.
func (a *API) Serve(ctx context.Context, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	_ = os.Remove(path)
	l, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("api: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/services", a.list)
	mux.HandleFunc("POST /v1/services/{name}/{action}", a.action)
	mux.HandleFunc("POST /v1/up", a.up)
	mux.HandleFunc("POST /v1/enable", a.enable)
	mux.HandleFunc("POST /v1/disable", a.disable)
	mux.HandleFunc("GET /v1/config", a.exportConfig)
	mux.HandleFunc("GET /v1/config/key", a.getKey)
	mux.HandleFunc("POST /v1/config", a.reconfigure)
	mux.HandleFunc("GET /v1/os", a.osList)
	mux.HandleFunc("POST /v1/os/upgrade", a.osUpgrade)
	mux.HandleFunc("POST /v1/os/rollback", a.osRollback)
	mux.HandleFunc("POST /v1/install", a.install)
	a.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = a.srv.Shutdown(sctx)
	}()
	if err := a.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
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
	if errors.Is(err, ErrUnknown) {
		code = http.StatusNotFound
	}
	reply(w, code, map[string]string{"error": err.Error()})
}

func (a *API) list(w http.ResponseWriter, _ *http.Request) {
	states := a.M.States()
	known := map[string]bool{}
	for _, s := range states {
		known[s.Name] = true
	}
	var cat []string
	for _, n := range CatalogNames() {
		if !known[n] {
			cat = append(cat, n)
		}
	}
	reply(w, http.StatusOK, ListReply{Services: states, Catalog: cat})
}

func (a *API) action(w http.ResponseWriter, r *http.Request) {
	name, action := r.PathValue("name"), r.PathValue("action")
	ctx := context.WithoutCancel(r.Context())
	var err error
	switch action {
	case "start":
		err = a.M.StartOne(name)
	case "stop":
		err = a.M.StopOne(ctx, name)
	case "restart":
		err = a.M.RestartOne(ctx, name)
	case "rm":
		err = a.M.RemoveOne(ctx, name)
	default:
		err = fmt.Errorf("unknown action %q", action)
	}
	if err != nil {
		fail(w, err)
		return
	}
	reply(w, http.StatusOK, map[string]string{"ok": name})
}

func (a *API) up(w http.ResponseWriter, r *http.Request) {
	var req struct{ Names []string }
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		fail(w, fmt.Errorf("request: %w", err))
		return
	}
	names := req.Names
	if len(names) == 0 {
		for _, s := range a.M.States() {
			names = append(names, s.Name)
		}
	}
	var errs []error
	for _, n := range names {
		if err := a.M.StartOne(n); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		fail(w, err)
		return
	}
	reply(w, http.StatusOK, map[string]any{"ok": names})
}

// enable validates the service's compose document (fields, names, and that
// each image is present or can be pulled) before anything is changed; only
// then is the file stored, services_include set, and the service started.
func (a *API) enable(w http.ResponseWriter, r *http.Request) {
	var req EnableRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		fail(w, fmt.Errorf("request: %w", err))
		return
	}
	ctx := context.WithoutCancel(r.Context())
	src, err := ResolveSource(ctx, req.Ref, req.Name, req.Content)
	if err != nil {
		fail(w, err)
		return
	}
	if !validName.MatchString(src.Name) {
		fail(w, fmt.Errorf("service name %q: want lower-case letters, digits, '.', '_' and '-'", src.Name))
		return
	}
	defs, err := ParseComposeDoc(ctx, req.Ref, src.Content, a.Env)
	if err != nil {
		fail(w, err)
		return
	}
	known := map[string]bool{}
	for _, s := range a.M.States() {
		known[s.Name] = true
	}
	for _, s := range defs {
		if known[s.Name] {
			fail(w, fmt.Errorf("%s: service %s already exists", req.Ref, s.Name))
			return
		}
		if err := a.M.Runner.Check(ctx, s.Image); err != nil {
			fail(w, fmt.Errorf("%s: service %s: %w", req.Ref, s.Name, err))
			return
		}
	}
	if src.Kind != "catalog" {
		if err := writeIncluded(src.Name, src.Content); err != nil {
			fail(w, err)
			return
		}
	}
	if err := setInclude(src.Name, true); err != nil {
		fail(w, err)
		return
	}
	if a.Node != nil {
		a.Node.refreshUser(a.M)
	}
	if err := a.M.Add(defs, src.Kind); err != nil {
		fail(w, err)
		return
	}
	var names []string
	for _, s := range defs {
		names = append(names, s.Name)
	}
	reply(w, http.StatusOK, map[string]any{"enabled": src.Name, "services": names})
}

func writeIncluded(name string, b []byte) error {
	if err := os.MkdirAll(IncludedDir, 0o700); err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(IncludedDir, name+".yml"), b)
}

func (a *API) disable(w http.ResponseWriter, r *http.Request) {
	var req struct{ Name string }
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		fail(w, fmt.Errorf("request: %w", err))
		return
	}
	doc, _, err := includedDoc(req.Name)
	if err != nil {
		fail(w, fmt.Errorf("%s is not an enabled service (built-in services are stopped with `ros service stop`)", req.Name))
		return
	}
	defs, err := ParseComposeDoc(r.Context(), req.Name, doc, a.Env)
	if err != nil {
		fail(w, err)
		return
	}
	if err := setInclude(req.Name, false); err != nil {
		fail(w, err)
		return
	}
	if a.Node != nil {
		a.Node.refreshUser(a.M)
	}
	var names []string
	for _, s := range defs {
		names = append(names, s.Name)
	}
	if err := a.M.Forget(context.WithoutCancel(r.Context()), names); err != nil {
		fail(w, err)
		return
	}
	reply(w, http.StatusOK, map[string]any{"disabled": req.Name, "services": names})
}

func (a *API) exportConfig(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	reply(w, http.StatusOK, a.Node.Export(q.Has("full"), q.Has("private")))
}

// GetReply is GET /v1/config/key.
type GetReply struct {
	Value any  `json:"value"`
	Set   bool `json:"set"`
}

func (a *API) getKey(w http.ResponseWriter, r *http.Request) {
	key := r.URL.Query().Get("key")
	if isSecretKey(key) {
		fail(w, fmt.Errorf("%s: registry credentials are never printed (they are in %s, readable by root only)", key, UserConfig))
		return
	}
	v, ok, err := config.Get(a.Node.Merged(), key)
	if err != nil {
		fail(w, err)
		return
	}
	if m, isMap := v.(map[string]any); isMap && strings.HasPrefix(config.RegistryAuthsKey, key+".") {
		// A key above the credentials (rancher): shown without them.
		m = config.Copy(m)
		_ = config.Set(m, strings.TrimPrefix(config.RegistryAuthsKey, key+"."), nil)
		v = m
	}
	reply(w, http.StatusOK, GetReply{Value: v, Set: ok})
}

func (a *API) reconfigure(w http.ResponseWriter, r *http.Request) {
	var req ReconfigureRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		fail(w, fmt.Errorf("request: %w", err))
		return
	}
	plan, err := a.M.Reconfigure(context.WithoutCancel(r.Context()), a.Node, req)
	if err != nil {
		fail(w, err)
		return
	}
	reply(w, http.StatusOK, plan)
}

// Client talks to the manager's API.
type Client struct{ http *http.Client }

// NewClient makes a client of the API at path.
func NewClient(path string) *Client {
	return &Client{http: &http.Client{
		Timeout: 10 * time.Minute,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			c, err := d.DialContext(ctx, "unix", path)
			if err != nil && errors.Is(err, os.ErrPermission) {
				return nil, fmt.Errorf("%s: permission denied (run as root: sudo ros ...)", path)
			}
			return c, err
		}},
	}}
}

// Do sends a request and decodes the JSON reply into out.
func (c *Client) Do(method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://ros"+path, body)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("service manager: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return errors.New(e.Error)
		}
		return fmt.Errorf("service manager: %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// Stream sends a request and returns the reply's body as it comes, for
// long operations that report progress (ros os upgrade). It has no time
// limit.
func (c *Client) Stream(method, path string, in any) (io.ReadCloser, error) {
	b, err := json.Marshal(in)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequest(method, "http://ros"+path, bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	hc := *c.http
	hc.Timeout = 0
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("service manager: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		var e struct{ Error string }
		body, _ := io.ReadAll(resp.Body)
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return nil, errors.New(e.Error)
		}
		return nil, fmt.Errorf("service manager: %s", resp.Status)
	}
	return resp.Body, nil
}
