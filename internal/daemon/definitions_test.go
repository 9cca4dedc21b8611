package daemon

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rosos/ros/config"
	"github.com/rosos/ros/internal/compose"
	ctrdrunner "github.com/rosos/ros/internal/runner/containerd"
)

func TestKubernetesArgs(t *testing.T) {
	k := config.Kubernetes{
		Role: "agent", ServerURL: "https://10.0.0.1:6443", Token: "K10ab::server:s", NodeName: "n2", NodeIP: "10.0.0.2",
		NodeLabels: []string{"zone=a"}, NodeTaints: []string{"gpu=yes:NoSchedule"}, ProxyMode: "iptables",
		ExtraArgs: map[string][]string{"kubelet": {"--max-pods=50"}, "etcd": {"v=2"}},
	}
	args, env := kubernetesArgs(k, []string{"A=1"})
	want := []string{"agent", "--server=https://10.0.0.1:6443", "--node-name=n2", "--node-ip=10.0.0.2", "--node-label=zone=a",
		"--node-taint=gpu=yes:NoSchedule", "--proxy-mode=iptables", "--kubelet-arg=max-pods=50", "--etcd-arg=v=2"}
	if !slices.Equal(args, want) {
		t.Errorf("args\n got  %q\n want %q", args, want)
	}
	if !slices.Contains(env, "KUBE_TOKEN=K10ab::server:s") || !slices.Contains(env, "A=1") {
		t.Errorf("env %q", env)
	}
	for _, a := range args {
		if strings.Contains(a, "s3cret") || strings.Contains(a, "K10ab") {
			t.Errorf("the token is on the command line: %q", a)
		}
	}
	if args, _ := kubernetesArgs(config.Kubernetes{}, nil); !slices.Equal(args, []string{"server"}) {
		t.Errorf("no keys: %q; want [server]", args)
	}
}

// A change of rancher.kubernetes gives the service a new hash: the
// service manager restarts it (and --dry-run says so).
func TestKubernetesConfigChangesTheHash(t *testing.T) {
	d := &Daemon{}
	base := compose.Service{Name: "kubernetes", Image: "rosos/kubernetes:v"}
	a, b := base, base
	if err := d.adjust(&a, config.Config{}); err != nil {
		t.Fatal(err)
	}
	if err := d.adjust(&b, config.Config{Rancher: config.Rancher{Kubernetes: config.Kubernetes{NodeIP: "10.0.0.9"}}}); err != nil {
		t.Fatal(err)
	}
	if a.Hash == b.Hash {
		t.Fatal("node_ip changed and the hash did not")
	}
}

// rancher.docker's flags go after the image's command (docker-start
// dockerd ...), which hands them to dockerd; args replaces the whole
// command line.
func TestDockerFlags(t *testing.T) {
	img := "rosos/docker:v"
	d := &Daemon{runner: &ctrdrunner.Runner{Preloaded: map[string]ctrdrunner.Preloaded{
		"docker.io/rosos/docker:v": {Ref: img, Cmd: []string{"/usr/local/bin/docker-start", "dockerd", "--data-root=/d"}},
	}}}
	s := compose.Service{Name: "docker", Image: img}
	cfg := config.Config{Rancher: config.Rancher{Docker: config.Docker{StorageDriver: "vfs", ExtraArgs: []string{"--debug"}}}}
	if err := d.adjust(&s, cfg); err != nil {
		t.Fatal(err)
	}
	want := []string{"/usr/local/bin/docker-start", "dockerd", "--data-root=/d", "--storage-driver=vfs", "--debug"}
	if !slices.Equal(s.Command, want) || len(s.Entrypoint) != 0 {
		t.Errorf("extra_args: command %q entrypoint %q; want %q", s.Command, s.Entrypoint, want)
	}
	s = compose.Service{Name: "docker", Image: img}
	cfg.Rancher.Docker = config.Docker{Args: []string{"dockerd", "--iptables=false"}}
	if err := d.adjust(&s, cfg); err != nil {
		t.Fatal(err)
	}
	if want := []string{"dockerd", "--iptables=false"}; !slices.Equal(s.Command, want) {
		t.Errorf("args: command %q; want %q", s.Command, want)
	}
}

func TestBootSysctl(t *testing.T) {
	docker := compose.Service{Name: "docker"}
	kube := compose.Service{Name: "kubernetes"}
	user := map[string]string{"vm.swappiness": "10"}
	if got := bootSysctl(user, []compose.Service{docker}); len(got) != 1 || got["vm.swappiness"] != "10" {
		t.Errorf("without kubernetes: %v, want the user's alone", got)
	}
	got := bootSysctl(user, []compose.Service{docker, kube})
	if got["net.ipv4.ip_forward"] != "1" || got["vm.swappiness"] != "10" || len(got) != 2 {
		t.Errorf("with kubernetes: %v, want forwarding on beside the user's", got)
	}
	if len(user) != 1 {
		t.Errorf("the config's map was changed: %v", user)
	}
	if got := bootSysctl(map[string]string{"net.ipv4.ip_forward": "0"}, []compose.Service{kube}); got["net.ipv4.ip_forward"] != "0" {
		t.Errorf("rancher.sysctl's own value: %v, want it kept", got)
	}
}

// The parses the build writes (ros-build parsed) are the ones a boot of
// the image looks up: its services, and a catalog service enabled by a
// datasource, come without compose-go when the other layers leave the
// services alone.
func TestImageServicesParsedAhead(t *testing.T) {
	tpl, err := os.ReadFile("../../os-config.tpl.yml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	imgPath := filepath.Join(dir, "os-config.yml")
	if err := os.WriteFile(imgPath, []byte(strings.ReplaceAll(string(tpl), "${VERSION}", "v9")), 0o644); err != nil {
		t.Fatal(err)
	}
	img, err := config.ReadFile(imgPath)
	if err != nil {
		t.Fatal(err)
	}
	own, err := config.Merge(img)
	if err != nil {
		t.Fatal(err)
	}
	ins, err := KnownInputs(own, "v9")
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := compose.WriteKnown(&b, ins); err != nil {
		t.Fatal(err)
	}
	parsed := filepath.Join(dir, "services.parsed.json")
	if err := os.WriteFile(parsed, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := compose.LoadKnown(parsed); err != nil {
		t.Fatal(err)
	}
	ds := config.Layer{Name: "nocloud", Doc: map[string]any{
		"ssh_authorized_keys": []any{"ssh-ed25519 AAAA k"},
		"rancher":             map[string]any{"services_include": map[string]any{"kubernetes": true}, "docker": map[string]any{"log_driver": "local"}},
	}}
	cfg, err := config.Merge(img, ds)
	if err != nil {
		t.Fatal(err)
	}
	env := ServiceEnv(cfg, "v9")
	defs, err := compose.Parse(context.Background(), cfg.Rancher.Services, env)
	if err != nil || len(defs) == 0 {
		t.Fatalf("%d services, %v", len(defs), err)
	}
	doc, _, err := compose.Included("kubernetes")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := compose.ParseDoc(context.Background(), "services_include.kubernetes", doc, env); err != nil {
		t.Fatal(err)
	}
	if n := compose.Misses(); n != 0 {
		t.Fatalf("%d parses with compose-go; want none", n)
	}
	// Another version is another environment: parsed.
	if _, err := compose.Parse(context.Background(), cfg.Rancher.Services, ServiceEnv(cfg, "v10")); err != nil {
		t.Fatal(err)
	}
	if n := compose.Misses(); n != 1 {
		t.Fatalf("another version: %d parses; want 1", n)
	}
}
