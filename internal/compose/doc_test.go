package compose

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rosos/ros/services"
)

func TestHealthcheckConditionsUlimits(t *testing.T) {
	ss, err := parseYAML(t, `
db:
  image: db:1
  healthcheck:
    test: ["CMD-SHELL", "pg_isready"]
    interval: 2s
    retries: 5
    start_period: 10s
  ulimits:
    nofile: {soft: 1024, hard: 4096}
    nproc: 512
init:
  image: init:1
  labels: {io.rancher.os.detach: "false"}
app:
  image: app:1
  depends_on:
    db: {condition: service_healthy}
    init: {condition: service_completed_successfully}
`)
	if err != nil {
		t.Fatal(err)
	}
	by := map[string]Service{}
	for _, s := range ss {
		by[s.Name] = s
	}
	h := by["db"].Health
	if h == nil || strings.Join(h.Test, " ") != "/bin/sh -c pg_isready" || h.Interval != 2*time.Second || h.Retries != 5 || h.StartPeriod != 10*time.Second {
		t.Errorf("healthcheck %+v", h)
	}
	if u := by["db"].Ulimits; len(u) != 2 || u[0].Name != "nofile" || u[0].Soft != 1024 || u[0].Hard != 4096 || u[1].Soft != 512 || u[1].Hard != 512 {
		t.Errorf("ulimits %+v", u)
	}
	if c := by["app"].Conditions; c["db"] != "service_healthy" || c["init"] != "service_completed_successfully" {
		t.Errorf("conditions %+v", c)
	}
	if by["init"].Detach {
		t.Error("io.rancher.os.detach=false: want a one-shot")
	}
}

func TestBadConditionAndHealthcheck(t *testing.T) {
	for doc, want := range map[string]string{
		"a:\n  image: a\n  depends_on:\n    b: {condition: service_sleeping}\nb:\n  image: b\n": "condition",
		"a:\n  image: a\n  healthcheck:\n    test: [CMD]\n":                                     "no command",
	} {
		_, err := parseYAML(t, doc)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "services.a") {
			t.Errorf("%q: err %v, want one naming services.a and %q", doc, err, want)
		}
	}
}

func TestParseDoc(t *testing.T) {
	ctx := context.Background()
	ss, err := ParseDoc(ctx, "f.yml", []byte("services:\n  web:\n    image: nginx\n"), nil)
	if err != nil || len(ss) != 1 || ss[0].Name != "web" {
		t.Fatalf("services: doc: %v %+v", err, ss)
	}
	// RancherOS v1 style: the services alone.
	ss, err = ParseDoc(ctx, "f.yml", []byte("web:\n  image: nginx\n"), nil)
	if err != nil || len(ss) != 1 {
		t.Fatalf("bare doc: %v %+v", err, ss)
	}
	for doc, want := range map[string]string{
		"services:\n  web:\n    image: nginx\n    build: .\n": "build",
		"services:\n  web: [\n":                               "not valid YAML",
		"services:\n  web:\n    image: nginx\nvolumes: {}\n":  "top-level key \"volumes\"",
		"services: {}\n":                                      "no services",
	} {
		_, err := ParseDoc(ctx, "f.yml", []byte(doc), nil)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "f.yml") {
			t.Errorf("%q: err %v, want one naming f.yml and %q", doc, err, want)
		}
	}
}

func TestCatalogParses(t *testing.T) {
	names := services.Names()
	if len(names) == 0 {
		t.Fatal("empty catalog")
	}
	for _, n := range names {
		src, err := ResolveSource(context.Background(), n, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseDoc(context.Background(), n, src.Content, map[string]string{"ROS_VERSION": "v1"}); err != nil {
			t.Errorf("catalog %s: %v", n, err)
		}
	}
	if _, err := ResolveSource(context.Background(), "nope", "", nil); err == nil || !strings.Contains(err.Error(), "not a catalog service") {
		t.Errorf("unknown name: %v", err)
	}
}

// The built-in services of the image parse, in an order that starts the
// console and the network first, alone, and the others after them.
func TestImageConfigServices(t *testing.T) {
	ss, err := Parse(context.Background(), imageServices(t), map[string]string{"VERSION": "v1"})
	if err != nil {
		t.Fatal(err)
	}
	ordered, err := Order(ss)
	if err != nil {
		t.Fatal(err)
	}
	pos := map[string]int{}
	for i, s := range ordered {
		pos[s.Name] = i
	}
	for _, n := range []string{"udev", "syslog", "network", "ntp", "acpid", "console", "docker"} {
		if _, ok := pos[n]; !ok {
			t.Errorf("built-in service %s missing", n)
		}
	}
	// The console and the network wait for no service (sshd answers once
	// the network is up; the network configures links as they appear);
	// udev, syslog and docker wait for the console, so the login's two
	// services start alone (docker-start waits for the network's static
	// configuration itself); ntp waits for the network, acpid for udev.
	for name, want := range map[string][]string{
		"console": nil, "network": nil,
		"udev": {"console"}, "syslog": {"console"}, "docker": {"console"},
		"ntp": {"network"}, "acpid": {"udev"},
	} {
		if deps := Deps(ordered[pos[name]], ordered); !slices.Equal(deps, want) {
			t.Errorf("%s waits for %v, want %v", name, deps, want)
		}
	}
}

func TestResolveSourceURL(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/web.yml" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte("services:\n  web:\n    image: nginx\n"))
	}))
	defer srv.Close()
	src, err := ResolveSource(context.Background(), srv.URL+"/web.yml", "", nil)
	if err != nil || src.Name != "web" || src.Kind != "url" || !strings.Contains(string(src.Content), "nginx") {
		t.Fatalf("%+v %v", src, err)
	}
	if _, err := ResolveSource(context.Background(), srv.URL+"/missing.yml", "", nil); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("missing URL: %v", err)
	}
}
