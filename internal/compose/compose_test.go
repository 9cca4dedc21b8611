package compose

import (
	"context"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func parseYAML(t *testing.T, doc string) ([]Service, error) {
	t.Helper()
	var raw map[string]any
	if err := yaml.Unmarshal([]byte(doc), &raw); err != nil {
		t.Fatal(err)
	}
	return Parse(context.Background(), raw, map[string]string{"VERSION": "v9"})
}

func TestParseSyslog(t *testing.T) {
	ss, err := parseYAML(t, `
syslog:
  image: rosos/syslog:${VERSION}
  command: [rsyslogd, -n]
  network_mode: host
  restart: always
  volumes:
    - /dev:/dev
    - /var/log:/var/log:ro
  environment:
    A: b
  labels:
    io.rancher.os.scope: system
    io.rancher.os.after: udev, network
  stop_grace_period: 5s
`)
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) != 1 {
		t.Fatalf("got %d services", len(ss))
	}
	s := ss[0]
	if s.Name != "syslog" || s.Image != "rosos/syslog:v9" || !s.HostNetwork || s.Restart != "always" {
		t.Fatalf("parsed %+v", s)
	}
	if len(s.Binds) != 2 || s.Binds[1] != (Bind{"/var/log", "/var/log", true}) {
		t.Fatalf("binds %+v", s.Binds)
	}
	if strings.Join(s.After, ",") != "udev,network" || !s.Detach || s.StopGrace.Seconds() != 5 {
		t.Fatalf("labels: after %v detach %v grace %v", s.After, s.Detach, s.StopGrace)
	}
	if len(s.Env) != 1 || s.Env[0] != "A=b" || s.Hash == "" {
		t.Fatalf("env %v hash %q", s.Env, s.Hash)
	}
}

func TestParseRefusesUnsupportedField(t *testing.T) {
	_, err := parseYAML(t, `
web:
  image: nginx
  ports: ["80:80"]
`)
	if err == nil || !strings.Contains(err.Error(), "rancher.services.web: field ports not supported") {
		t.Fatalf("err = %v", err)
	}
}

func TestParseRefusesNamedVolumeAndBadMode(t *testing.T) {
	if _, err := parseYAML(t, "a:\n  image: x\n  volumes: [data:/data]\n"); err == nil ||
		!strings.Contains(err.Error(), "volume data") {
		t.Fatalf("named volume: err = %v", err)
	}
	if _, err := parseYAML(t, "a:\n  image: x\n  volumes: [{type: tmpfs, target: /x}]\n"); err == nil ||
		!strings.Contains(err.Error(), "only bind mounts") {
		t.Fatalf("tmpfs volume: err = %v", err)
	}
	if _, err := parseYAML(t, "a:\n  image: x\n  pid: container:b\n"); err == nil ||
		!strings.Contains(err.Error(), `pid "container:b"`) {
		t.Fatalf("pid: err = %v", err)
	}
	if _, err := parseYAML(t, "a:\n  command: [x]\n"); err == nil || !strings.Contains(err.Error(), "image") {
		t.Fatalf("no image: err = %v", err)
	}
}

func TestHashChangesWithDefinition(t *testing.T) {
	a, err := parseYAML(t, "s:\n  image: x\n  command: [a]\n")
	if err != nil {
		t.Fatal(err)
	}
	b, err := parseYAML(t, "s:\n  image: x\n  command: [b]\n")
	if err != nil {
		t.Fatal(err)
	}
	if a[0].Hash == b[0].Hash {
		t.Fatal("different commands gave the same hash")
	}
}

func TestParseCPUShares(t *testing.T) {
	ss, err := parseYAML(t, "a:\n  image: x\n  cpu_shares: 4096\nb:\n  image: x\n")
	if err != nil {
		t.Fatal(err)
	}
	if ss[0].CPUShares != 4096 || ss[1].CPUShares != 0 {
		t.Fatalf("cpu shares %d, %d; want 4096, 0 (unset)", ss[0].CPUShares, ss[1].CPUShares)
	}
	for _, bad := range []string{"1", "-5", "300000"} {
		if _, err := parseYAML(t, "a:\n  image: x\n  cpu_shares: "+bad+"\n"); err == nil ||
			!strings.Contains(err.Error(), "rancher.services.a: cpu_shares "+bad+": want 2 to 262144") {
			t.Errorf("cpu_shares %s: err = %v", bad, err)
		}
	}
}
