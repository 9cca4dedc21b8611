// Command containerd-shim-runc-v2 is containerd's runc v2 shim (the same
// task service, the same name) with one change to how a container joins
// its group's shim.
//
// Every system service carries the group annotation, so all of them share
// one shim process. Upstream, a new task joins the group's shim if a dial
// of the group's socket succeeds within 100 ms; when it does not (the
// guest's CPUs busy at boot or while the docker service restarts, under
// QEMU's TCG most of all), the new shim removes the group's socket and
// starts a group of its own. The first shim then serves its tasks on a
// socket that is gone: one shim more (about 10 MB), and after a restart
// of system containerd its tasks are looked for in the wrong shim.
//
// Here a task whose group's socket is there dials it patiently (up to
// groupWait) before falling back to upstream's start, which still makes
// the group's shim when there is none.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2/manager"
	_ "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2/task/plugin"
	"github.com/containerd/containerd/v2/pkg/shim"
)

func main() {
	shim.Run(context.Background(), groupManager{manager.NewShimManager("io.containerd.runc.v2")})
}

// groupLabels are the annotations upstream groups by, in its order.
var groupLabels = []string{"io.containerd.runc.v2.group", "io.kubernetes.cri.sandbox-id"}

const (
	// groupWait is how long a dial of a group's socket may take in all.
	groupWait = 5 * time.Second
	// refusedWait is how long a socket that refuses connections is
	// retried: between another shim's bind and its listen, or left by a
	// shim that died (then upstream replaces it).
	refusedWait = time.Second
)

type groupManager struct{ shim.Manager }

// Start joins the task to its group's running shim, or starts a shim.
func (m groupManager) Start(ctx context.Context, id string, opts shim.StartOpts) (shim.BootstrapParams, error) {
	if group := specGroup("config.json"); group != "" {
		addr, err := shim.SocketAddress(ctx, opts.Address, group, false)
		if err == nil && reachable(strings.TrimPrefix(addr, "unix://"), groupWait, refusedWait) {
			return shim.BootstrapParams{Version: 3, Protocol: "ttrpc", Address: addr}, nil
		}
	}
	return m.Manager.Start(ctx, id, opts)
}

// specGroup is the group annotation of the OCI spec at path, "" if it has
// none or cannot be read (upstream's start then reports the error).
func specGroup(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	var spec struct {
		Annotations map[string]string `json:"annotations"`
	}
	if json.Unmarshal(b, &spec) != nil {
		return ""
	}
	for _, l := range groupLabels {
		if g, ok := spec.Annotations[l]; ok && g != "" {
			return g
		}
	}
	return ""
}

// reachable reports whether a listener answers on the unix socket at
// path, dialing until limit has passed, or refused for refused: false at
// once when there is no socket.
func reachable(path string, limit, refused time.Duration) bool {
	start := time.Now()
	for {
		c, err := net.DialTimeout("unix", path, limit)
		if err == nil {
			_ = c.Close() // a probe: the answer was the connect
			return true
		}
		if errors.Is(err, syscall.ENOENT) {
			return false
		}
		since := time.Since(start)
		if since >= limit || (errors.Is(err, syscall.ECONNREFUSED) && since >= refused) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}
