package supervisor

import (
	"strconv"
	"strings"
	"time"
)

// Restart policies, as compose names them, and the back-off between
// restarts of a service that keeps ending.

func (m *Supervisor) backoff(n int) time.Duration {
	if m.Backoff != nil {
		return m.Backoff(n)
	}
	return Backoff(n, time.Minute)
}

// Backoff is the wait before restart n (1-based): 1s, 2s, 4s ... up to max.
func Backoff(n int, max time.Duration) time.Duration {
	d := time.Second
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	return min(d, max)
}

// ShouldRestart applies a compose restart policy to an exit.
func ShouldRestart(policy string, code uint32, restarts int) bool {
	switch {
	case policy == "always" || policy == "unless-stopped":
		return true
	case policy == "on-failure":
		return code != 0
	case strings.HasPrefix(policy, "on-failure:"):
		max, err := strconv.Atoi(strings.TrimPrefix(policy, "on-failure:"))
		return code != 0 && err == nil && restarts < max
	}
	return false
}
