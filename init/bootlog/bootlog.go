// Package bootlog prints the boot's stages on the console, each with its
// number, its name and the seconds since the kernel started, and records them
// so that the boot can be read again after it (ros boot analyze).
package bootlog

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Since is the time since the kernel started (CLOCK_BOOTTIME): the same clock
// the kernel's own log uses, so our lines and dmesg line up.
func Since() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// Event is one recorded point of the boot.
type Event struct {
	Phase string  `json:"phase"` // stage1, init, service
	Name  string  `json:"name"`
	At    float64 `json:"at"` // seconds since the kernel started
	Note  string  `json:"note,omitempty"`
}

// Log writes boot lines to w (the console) and keeps them.
type Log struct {
	mu     sync.Mutex
	w      io.Writer
	phase  string
	n      int
	Events []Event
	now    func() time.Duration
}

// New returns a log for one phase ("stage1" or "init") that writes to w.
func New(w io.Writer, phase string) *Log {
	return &Log{w: w, phase: phase, now: Since}
}

// Stage starts the next numbered stage and prints it.
func (l *Log) Stage(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n++
	at := l.now().Seconds()
	fmt.Fprintf(l.w, "ros: [%8.3f] %s %d: %s\n", at, l.phase, l.n, name)
	l.Events = append(l.Events, Event{Phase: l.phase, Name: fmt.Sprintf("%d %s", l.n, name), At: at})
}

// Printf prints a line with the time, outside the stage numbering.
func (l *Log) Printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "ros: [%8.3f] %s\n", l.now().Seconds(), fmt.Sprintf(format, args...))
}

// Mark records an event without printing it.
func (l *Log) Mark(phase, name, note string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.Events = append(l.Events, Event{Phase: phase, Name: name, At: l.now().Seconds(), Note: note})
}

// Save appends the recorded events to path as JSON lines.
func (l *Log) Save(path string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(f)
	for _, e := range l.Events {
		if err := enc.Encode(e); err != nil {
			f.Close()
			return err
		}
	}
	l.Events = nil
	return f.Close()
}

// Console prints msg on w (the console) as the service manager's boot
// lines look: "ros: [  12.345] msg", with the seconds since the kernel
// started. A nil w prints nothing.
func Console(w io.Writer, msg string) {
	if w != nil {
		fmt.Fprintf(w, "ros: [%8.3f] %s\n", Since().Seconds(), msg)
	}
}
