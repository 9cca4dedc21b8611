package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"

	"github.com/rosos/ros/internal/compose"
)

// Probe is `ros probe`: one HTTP GET, over TCP or a unix socket, that
// passes on a 2xx status.
type Probe struct {
	URL     string
	Socket  string        // a unix socket to connect to instead of the URL's host
	Timeout time.Duration // 0: ProbeTimeout
}

// ProbeTimeout is how long a probe waits for its answer by default.
const ProbeTimeout = 10 * time.Second

// Run makes the request and writes one line on success.
func (p Probe) Run(ctx context.Context, out io.Writer) error {
	u, err := url.Parse(p.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("probe: %q is not an http:// or https:// URL", p.URL)
	}
	tr := &http.Transport{}
	if p.Socket != "" {
		socket := p.Socket
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		}
	}
	defer tr.CloseIdleConnections()
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = ProbeTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return fmt.Errorf("probe %s: %w", p.URL, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("probe %s: %s: %s", p.URL, resp.Status, body)
	}
	_, err = fmt.Fprintf(out, "%s: %s\n", p.URL, resp.Status)
	return err
}

// probeCommand reads a healthcheck that is `ros probe [--unix S]
// [--timeout D] URL`. Anything else, flags it does not know included, is
// not one (false): it runs in the container as it is.
func probeCommand(test []string) (Probe, bool) {
	if len(test) < 3 || (test[0] != "ros" && test[0] != "/usr/bin/ros") || test[1] != "probe" {
		return Probe{}, false
	}
	var p Probe
	args := test[2:]
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			if p.URL != "" {
				return Probe{}, false
			}
			p.URL = a
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !hasVal {
			if i+1 >= len(args) {
				return Probe{}, false
			}
			i++
			val = args[i]
		}
		switch name {
		case "unix":
			p.Socket = val
		case "timeout":
			d, err := time.ParseDuration(val)
			if err != nil || d <= 0 {
				return Probe{}, false
			}
			p.Timeout = d
		default:
			return Probe{}, false
		}
	}
	if p.URL == "" {
		return Probe{}, false
	}
	return p, true
}

// errInContainer means a probe cannot be made from the manager as the
// container would make it: it is run in the container instead.
var errInContainer = errors.New("run in the container")

// hostProbe makes a `ros probe` healthcheck of the service whose task is
// pid from the service manager, without running a program in the
// container: under emulation, starting runc and the ros binary for each
// check took CPU from the boot it was checking. It gives errInContainer
// when the manager cannot reach what the container would: a TCP URL of a
// service without host networking, or a host name other than localhost
// (the container resolves names with its own files); and when the
// container has no ros at test[0] for the check to run, so that a
// healthcheck that would fail in the container fails the same way.
// root is the container's root as the manager sees it (/proc/PID/root of
// its task).
func hostProbe(s compose.Service, root string, test []string) (Probe, error) {
	p, ok := probeCommand(test)
	if !ok || root == "" {
		return Probe{}, errInContainer
	}
	if !hasProgram(root, test[0]) {
		return Probe{}, errInContainer
	}
	if p.Socket != "" {
		if !path.IsAbs(p.Socket) {
			return Probe{}, errInContainer
		}
		// The socket's path as the container sees it: its symlinks are
		// followed inside its root.
		sock, err := securejoin.SecureJoin(root, p.Socket)
		if err != nil || len(sock) > 107 {
			return Probe{}, errInContainer
		}
		p.Socket = sock
		return p, nil
	}
	if !s.HostNetwork {
		return Probe{}, errInContainer
	}
	u, err := url.Parse(p.URL)
	if err != nil {
		return p, nil // Run names what is wrong with it
	}
	if h := u.Hostname(); h != "localhost" && net.ParseIP(h) == nil {
		return Probe{}, errInContainer
	}
	return p, nil
}

// hasProgram tells whether the container with root has prog as an
// executable file: at that path, or in the usual PATH for a bare name.
func hasProgram(root, prog string) bool {
	dirs := []string{""}
	if !strings.Contains(prog, "/") {
		dirs = []string{"/usr/local/sbin/", "/usr/local/bin/", "/usr/sbin/", "/usr/bin/", "/sbin/", "/bin/"}
	}
	for _, d := range dirs {
		p, err := securejoin.SecureJoin(root, d+prog)
		if err != nil {
			continue
		}
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return true
		}
	}
	return false
}
