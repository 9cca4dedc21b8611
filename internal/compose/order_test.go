package compose

import (
	"strings"
	"testing"
)

func names(ss []Service) string {
	var n []string
	for _, s := range ss {
		n = append(n, s.Name)
	}
	return strings.Join(n, " ")
}

func TestOrder(t *testing.T) {
	ss := []Service{
		{Name: "console", After: []string{"network", "syslog"}},
		{Name: "docker", DependsOn: []string{"network"}},
		{Name: "network", After: []string{"udev", "not-enabled"}},
		{Name: "syslog"},
		{Name: "udev", Before: []string{"syslog"}},
	}
	got, err := Order(ss)
	if err != nil {
		t.Fatal(err)
	}
	if n := names(got); n != "udev network syslog console docker" {
		t.Fatalf("order %q", n)
	}
	if d := strings.Join(Deps(ss[3], ss), ","); d != "udev" {
		t.Fatalf("syslog waits for %q, want udev (by its before label)", d)
	}
}

func TestOrderCycle(t *testing.T) {
	_, err := Order([]Service{
		{Name: "a", After: []string{"b"}},
		{Name: "b", After: []string{"c"}},
		{Name: "c", After: []string{"a"}},
		{Name: "d"},
	})
	if err == nil || !strings.Contains(err.Error(), "cycle among a, b, c") {
		t.Fatalf("err = %v", err)
	}
}
