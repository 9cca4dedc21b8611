//go:build e2e

package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
)

// serveEnv makes this test binary a one-connection HTTP server on stdin
// and stdout, for QEMU's guestfwd (which runs a command per connection):
// the metadata service a test gives the guest at 169.254.169.254.
const serveEnv = "ROS_E2E_SERVE_METADATA"

// guestfwd is the -netdev option that sends the guest's connections to
// 169.254.169.254:80 to this binary, when the machine has metadata.
func (m *Machine) guestfwd() string {
	if m.metadata == "" {
		return ""
	}
	exe, err := os.Executable()
	if err != nil {
		m.t.Fatal(err)
	}
	// slirp forwards only addresses inside its network: make it the
	// link-local one, as on a cloud.
	return fmt.Sprintf(",net=169.254.0.0/16,guestfwd=tcp:169.254.169.254:80-cmd:env %s=%s %s", serveEnv, m.metadata, exe)
}

// serveMetadata answers HTTP requests on stdin/stdout from the JSON map
// of path -> content in file, until the connection closes.
func serveMetadata(file string) {
	b, err := os.ReadFile(file)
	if err != nil {
		os.Exit(1)
	}
	var files map[string]string
	if err := json.Unmarshal(b, &files); err != nil {
		os.Exit(1)
	}
	r := bufio.NewReader(os.Stdin)
	for {
		req, err := http.ReadRequest(r)
		if err != nil {
			return
		}
		io.Copy(io.Discard, req.Body)
		body, ok := files[req.URL.Path]
		resp := &http.Response{StatusCode: 200, ProtoMajor: 1, ProtoMinor: 1, Header: http.Header{}}
		if !ok {
			resp.StatusCode, body = 404, "not found\n"
		}
		resp.Status = http.StatusText(resp.StatusCode)
		resp.ContentLength = int64(len(body))
		resp.Body = io.NopCloser(strings.NewReader(body))
		resp.Close = req.Close
		if err := resp.Write(os.Stdout); err != nil || req.Close {
			return
		}
	}
}
