// Package client talks to the service manager's API, a unix socket for
// root (/run/ros/ros.sock): the services, the node's config and the OS
// slots. The `ros` command is its user; so can a program on the node be.
package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/rosos/ros/internal/paths"
)

// Socket is where the service manager listens.
const Socket = paths.Socket

// Client talks to the service manager.
type Client struct{ http *http.Client }

// New makes a client of the API at path (Socket).
func New(path string) *Client {
	return &Client{http: &http.Client{
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

// shortTimeout bounds a request that is not a long operation.
const shortTimeout = 10 * time.Minute

// Services lists the services and the catalog's services not enabled.
func (c *Client) Services(ctx context.Context) (ServiceList, error) {
	var r ServiceList
	err := c.do(ctx, http.MethodGet, "/v1/services", nil, &r)
	return r, err
}

// Action is start, stop, restart or rm of one service.
func (c *Client) Action(ctx context.Context, name, action string) error {
	return c.do(ctx, http.MethodPost, "/v1/services/"+url.PathEscape(name)+"/"+url.PathEscape(action), nil, nil)
}

// Up starts the named services (every known one when none are named) that
// are not running.
func (c *Client) Up(ctx context.Context, names []string) error {
	return c.do(ctx, http.MethodPost, "/v1/up", map[string][]string{"names": names}, nil)
}

// Enable checks a compose file (catalog name, URL or file content), stores
// it, turns it on in the config and starts its services.
func (c *Client) Enable(ctx context.Context, req EnableRequest) (Enabled, error) {
	var r Enabled
	err := c.do(ctx, http.MethodPost, "/v1/enable", req, &r)
	return r, err
}

// Disable turns an enabled service off and removes its containers.
func (c *Client) Disable(ctx context.Context, name string) (Enabled, error) {
	var r Enabled
	err := c.do(ctx, http.MethodPost, "/v1/disable", map[string]string{"name": name}, &r)
	return r, err
}

// Export returns the user's config (every layer but the image's), or with
// full the whole merged config; private keys only with private.
func (c *Client) Export(ctx context.Context, full, private bool) (map[string]any, error) {
	q := url.Values{}
	if full {
		q.Set("full", "1")
	}
	if private {
		q.Set("private", "1")
	}
	var doc map[string]any
	err := c.do(ctx, http.MethodGet, "/v1/config?"+q.Encode(), nil, &doc)
	return doc, err
}

// Get reads one key of the merged config.
func (c *Client) Get(ctx context.Context, key string) (ConfigValue, error) {
	var r ConfigValue
	err := c.do(ctx, http.MethodGet, "/v1/config/key?key="+url.QueryEscape(key), nil, &r)
	return r, err
}

// Reconfigure changes the user's config and applies it (or, DryRun, says
// what it would do).
func (c *Client) Reconfigure(ctx context.Context, req ReconfigureRequest) (Plan, error) {
	var p Plan
	err := c.do(ctx, http.MethodPost, "/v1/config", req, &p)
	return p, err
}

// Slots describes both OS slots.
func (c *Client) Slots(ctx context.Context) ([]Slot, error) {
	var s []Slot
	err := c.do(ctx, http.MethodGet, "/v1/os", nil, &s)
	return s, err
}

// Upgrade writes an OS image to the passive slot, printing its progress on
// out, and returns the slot written.
func (c *Client) Upgrade(ctx context.Context, req UpgradeRequest, out io.Writer) (string, error) {
	return c.stream(ctx, "/v1/os/upgrade", req, out)
}

// Rollback makes the other slot boot next and returns it.
func (c *Client) Rollback(ctx context.Context, req RollbackRequest) (string, error) {
	var r Result
	err := c.do(ctx, http.MethodPost, "/v1/os/rollback", req, &r)
	return r.OK, err
}

// Install writes the OS to a disk, printing its progress on out.
func (c *Client) Install(ctx context.Context, req InstallRequest, out io.Writer) (string, error) {
	return c.stream(ctx, "/v1/install", req, out)
}

// do sends a request and decodes the JSON reply into out.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	ctx, cancel := context.WithTimeout(ctx, shortTimeout)
	defer cancel()
	resp, err := c.send(ctx, method, path, in)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("service manager: %w", err)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("service manager: reply: %w", err)
		}
	}
	return nil
}

func (c *Client) send(ctx context.Context, method, path string, in any) (*http.Response, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://ros"+path, body)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("service manager: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var r Result
		if json.Unmarshal(b, &r) == nil && r.Error != "" {
			return nil, errors.New(r.Error)
		}
		return nil, fmt.Errorf("service manager: %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	return resp, nil
}

// stream sends a long operation's request, prints its progress lines on
// out as they come, and returns the result of its last line. It has no
// time limit but ctx's.
func (c *Client) stream(ctx context.Context, path string, in any, out io.Writer) (string, error) {
	resp, err := c.send(ctx, http.MethodPost, path, in)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	return ReadStream(resp.Body, out)
}

// ReadStream reads a streamed operation's progress lines, printing them on
// out, and returns the result of its last line.
func ReadStream(r io.Reader, out io.Writer) (string, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "{") {
			var res Result
			if json.Unmarshal([]byte(line), &res) == nil && (res.OK != "" || res.Error != "") {
				if res.Error != "" {
					return "", errors.New(res.Error)
				}
				return res.OK, nil
			}
		}
		fmt.Fprintln(out, line)
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("service manager: %w", err)
	}
	return "", errors.New("the service manager ended the operation without a result")
}
