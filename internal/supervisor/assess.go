package supervisor

import (
	"context"
	"encoding/json"
	"io"
	"sort"
	"time"
)

// LabelCritical marks a service the boot depends on: a boot is marked good
// (its slot kept) only when every critical service is healthy.
const LabelCritical = "io.rosos.critical"

// AssessDeadline bounds how long a boot may take to get every critical
// service healthy.
const AssessDeadline = 10 * time.Minute

// Verdict is what the boot assessment found.
type Verdict struct {
	Event   string   `json:"event"`             // healthy or unhealthy
	Failing []string `json:"failing,omitempty"` // critical services not healthy
}

// criticalFailing lists the critical services that are not healthy: not
// running, or running with a healthcheck that has not passed.
func criticalFailing(states []State) []string {
	var out []string
	for _, st := range states {
		if st.Service.Labels[LabelCritical] != "true" {
			continue
		}
		ok := st.Status == Running && (st.Service.Health == nil || st.Health == Healthy)
		if !ok {
			out = append(out, st.Name)
		}
	}
	sort.Strings(out)
	return out
}

// Assess waits until every critical service is healthy, or the deadline
// passes, and tells PID 1 on status (which marks the boot good, or, for a
// slot on trial, reboots so that GRUB can fall back).
func (m *Supervisor) Assess(ctx context.Context, status io.Writer, deadline time.Duration) Verdict {
	end := time.Now().Add(deadline)
	var v Verdict
	for {
		failing := criticalFailing(m.States())
		if len(failing) == 0 {
			v = Verdict{Event: "healthy"}
			break
		}
		if time.Now().After(end) {
			v = Verdict{Event: "unhealthy", Failing: failing}
			break
		}
		select {
		case <-ctx.Done():
			return Verdict{}
		case <-time.After(2 * time.Second):
		}
	}
	if v.Event == "healthy" {
		m.logger().Info("boot assessment: every critical service is healthy")
	} else {
		m.consolef("boot assessment: critical services not healthy within %s: %v", deadline, v.Failing)
	}
	if status != nil {
		b, _ := json.Marshal(v)
		_, _ = status.Write(append(b, '\n'))
	}
	return v
}
