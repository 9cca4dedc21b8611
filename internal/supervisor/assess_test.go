package supervisor

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rosos/ros/internal/compose"
)

func TestAssess(t *testing.T) {
	crit := map[string]string{LabelCritical: "true"}
	m := &Supervisor{svcs: map[string]*entry{}}
	add := func(name string, labels map[string]string, health *compose.Health, status Status, h Health) {
		e := newEntry(compose.Service{Name: name, Labels: labels, Health: health}, "built-in")
		e.Status, e.Health = status, h
		m.svcs[name] = e
	}
	add("console", crit, nil, "running", "")
	add("docker", crit, &compose.Health{}, "running", "starting")
	add("ntp", nil, nil, "failed", "")
	if f := criticalFailing(m.States()); strings.Join(f, ",") != "docker" {
		t.Fatalf("failing %v", f)
	}
	var status bytes.Buffer
	v := m.Assess(context.Background(), &status, 10*time.Millisecond)
	if v.Event != "unhealthy" || !strings.Contains(status.String(), `"failing":["docker"]`) {
		t.Fatalf("verdict %+v, status %s", v, status.String())
	}
	m.svcs["docker"].Health = Healthy
	status.Reset()
	if v := m.Assess(context.Background(), &status, time.Minute); v.Event != "healthy" || !strings.Contains(status.String(), `"event":"healthy"`) {
		t.Fatalf("verdict %+v, status %s", v, status.String())
	}
}
