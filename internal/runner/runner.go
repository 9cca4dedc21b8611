// Package runner is what the supervisor asks of a way to run services: start
// one, restart it, stop it, remove it, run a command in it. The containerd
// runner (internal/runner/containerd) is the one the OS uses; the
// supervisor's tests use a fake.
package runner

import (
	"context"
	"errors"
	"io"
	"syscall"
	"time"

	"github.com/rosos/ros/internal/compose"
)

// Exit is how a task ended.
type Exit struct {
	Code uint32
	Err  error // the exit could not be read
}

// Task is a service's running process.
type Task struct {
	Name    string
	Pid     uint32
	Adopted bool // it was already running when the supervisor (re)started
	// Exited gets the task's exit, once.
	Exited <-chan Exit
}

// Runner runs services.
type Runner interface {
	// Start runs s, or adopts its task when one made from the same
	// definition is running. A createonly service returns a nil task.
	Start(ctx context.Context, s compose.Service) (*Task, error)
	// Restart starts a new task of s after its last one ended.
	Restart(ctx context.Context, s compose.Service) (*Task, error)
	// Ran reports whether s (the same definition) ran and ended in this
	// boot: a one-shot is not run twice.
	Ran(ctx context.Context, s compose.Service) bool
	// Stop signals the task of name, kills it after grace, and ends it.
	Stop(ctx context.Context, name string, sig syscall.Signal, grace time.Duration) error
	// Remove deletes what Start made for name.
	Remove(ctx context.Context, name string) error
	// Exec runs args in the running task of name and returns its exit
	// status.
	Exec(ctx context.Context, name string, args []string, stdin io.Reader, stdout, stderr io.Writer, tty bool) (uint32, error)
	// Check tells whether image can be run (present, or can be pulled).
	Check(ctx context.Context, image string) error
}

// ErrNotRunning means the service has no running task.
var ErrNotRunning = errors.New("not running")
