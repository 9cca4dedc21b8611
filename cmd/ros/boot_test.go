package main

import (
	"testing"

	"github.com/rosos/ros/init/bootlog"
)

func TestAnalyzeSlowestFirst(t *testing.T) {
	rows := Analyze([]bootlog.Event{
		{Phase: "stage1", Name: "modules", At: 1},
		{Phase: "stage1", Name: "switch root", At: 4},
		{Phase: "init", Name: "containerd", At: 5},
		{Phase: "service", Name: "syslog", Note: "starting", At: 6},
		{Phase: "service", Name: "syslog", Note: "started", At: 7},
		{Phase: "service", Name: "docker", Note: "starting", At: 7},
		{Phase: "service", Name: "docker", Note: "started", At: 8},
		{Phase: "service", Name: "docker", Note: "healthy", At: 12},
	})
	want := []struct {
		what string
		took float64
	}{{"service docker", 5}, {"stage1: modules", 3}, {"stage1: switch root", 1}, {"service syslog", 1}, {"init: containerd", 0}}
	if len(rows) != len(want) {
		t.Fatalf("got %d rows, want %d: %+v", len(rows), len(want), rows)
	}
	for i, w := range want {
		if rows[i].What != w.what || rows[i].Took != w.took {
			t.Errorf("row %d = %s %.1f, want %s %.1f", i, rows[i].What, rows[i].Took, w.what, w.took)
		}
	}
	if rows[0].Healthy != 12 || rows[0].Started != 8 {
		t.Errorf("docker row %+v", rows[0])
	}
}
