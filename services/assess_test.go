package services

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

func TestAssess(t *testing.T) {
	crit := map[string]string{LabelCritical: "true"}
	m := &Manager{Log: &bytes.Buffer{}, svcs: map[string]*entry{}}
	add := func(name string, labels map[string]string, health *Health, status, h string) {
		e := newEntry(Service{Name: name, Labels: labels, Health: health}, "built-in")
		e.Status, e.Health = status, h
		m.svcs[name] = e
	}
	add("console", crit, nil, "running", "")
	add("docker", crit, &Health{}, "running", "starting")
	add("ntp", nil, nil, "failed", "")
	if f := criticalFailing(m.States()); strings.Join(f, ",") != "docker" {
		t.Fatalf("failing %v", f)
	}
	var status bytes.Buffer
	v := m.assess(context.Background(), &status, 10*time.Millisecond)
	if v.Event != "unhealthy" || !strings.Contains(status.String(), `"failing":["docker"]`) {
		t.Fatalf("verdict %+v, status %s", v, status.String())
	}
	m.svcs["docker"].Health = "healthy"
	status.Reset()
	if v := m.assess(context.Background(), &status, time.Minute); v.Event != "healthy" || !strings.Contains(status.String(), `"event":"healthy"`) {
		t.Fatalf("verdict %+v, status %s", v, status.String())
	}
}
