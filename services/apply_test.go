package services

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rosos/ros/config"
)

func TestWriteFile(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("root:x:0:0::/root:/bin/sh\n"), 0o644)
	files := []config.WriteFile{
		{Path: "/a/plain", Content: "x", Permissions: 0o600},
		{Path: "/a/b64", Content: "aGk=", Encoding: "b64"},
		{Path: "/a/app", Content: "1\n"},
		{Path: "/a/app", Content: "2\n", Append: true},
		{Path: "/../../escape", Content: "stays under root"},
	}
	for _, f := range files {
		if err := writeFile(root, f); err != nil {
			t.Fatalf("%s: %v", f.Path, err)
		}
	}
	fi, _ := os.Stat(filepath.Join(root, "a/plain"))
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode())
	}
	for p, want := range map[string]string{"a/b64": "hi", "a/app": "1\n2\n", "escape": "stays under root"} {
		if b, _ := os.ReadFile(filepath.Join(root, p)); string(b) != want {
			t.Errorf("%s = %q, want %q", p, b, want)
		}
	}
	if err := writeFile(root, config.WriteFile{Path: "/x", Owner: "nobody-here"}); err == nil || !strings.Contains(err.Error(), `no user entry "nobody-here"`) {
		t.Errorf("unknown owner: %v", err)
	}
	if err := writeFile(root, config.WriteFile{Path: "/x", Encoding: "b64", Content: "%%%"}); err == nil || !strings.Contains(err.Error(), "base64") {
		t.Errorf("bad base64: %v", err)
	}
}

func TestScript(t *testing.T) {
	got := script([]config.Command{{Shell: "echo a > /tmp/x"}, {}, {Args: []string{"touch", "it's"}}, {Shell: "  "}})
	want := "echo a > /tmp/x\n'touch' 'it'\\''s'\n"
	if got != want {
		t.Fatalf("script:\n%q\nwant\n%q", got, want)
	}
	body := runcmdScript(config.Config{Runcmd: []config.Command{{Shell: "r"}}, Rancher: config.Rancher{Network: config.Network{PostCmds: []string{"p"}}}}, []string{"/s/ec2"})
	if !strings.HasPrefix(body, "p\nr\n/s/ec2 ||") || !strings.Contains(body, "/opt/rancher/bin/start.sh") {
		t.Fatalf("runcmd script:\n%s", body)
	}
}

func TestServiceChanges(t *testing.T) {
	mk := func(name, image string, labels map[string]string) Service {
		s := Service{Name: name, Image: image, Labels: labels}
		s.Hash = rehash(s)
		return s
	}
	m := &Manager{svcs: map[string]*entry{}}
	for _, s := range []Service{mk("net", "n", map[string]string{LabelReloadConfig: "true"}), mk("a", "a", nil), mk("gone", "g", nil), mk("ntp", "t", nil)} {
		m.svcs[s.Name] = newEntry(s, "built-in")
	}
	defs := []Service{mk("net", "n", map[string]string{LabelReloadConfig: "true"}), mk("a", "a2", nil), mk("new", "x", nil), mk("ntp", "t", nil)}
	cfg := config.Config{Rancher: config.Rancher{RestartServices: []string{"ntp"}}}
	start, stop, restart := m.serviceChanges(defs, []config.Change{{Key: "rancher.network.dns.nameservers"}}, cfg)
	if strings.Join(start, ",") != "new" || strings.Join(stop, ",") != "gone" || strings.Join(restart, ",") != "a,net,ntp" {
		t.Fatalf("start %v stop %v restart %v", start, stop, restart)
	}
	_, _, restart = m.serviceChanges(defs[:1], []config.Change{{Key: "rancher.services_include.k3s"}}, config.Config{})
	if len(restart) != 0 {
		t.Fatalf("services_include alone restarted %v", restart)
	}
}

func TestExportLeavesOutPrivateKeys(t *testing.T) {
	n := &NodeConfig{
		image: config.Layer{Doc: map[string]any{"rancher": map[string]any{"services": map[string]any{"x": map[string]any{}}}}},
		user:  config.Layer{Doc: map[string]any{"hostname": "h", "rancher": map[string]any{"ssh": map[string]any{"keys": map[string]any{"ssh_host_ed25519_key": "PRIVATE"}}}}},
	}
	n.merged = config.MergeDocs(n.layersLocked()...)
	if doc := n.Export(false, false); doc["hostname"] != "h" || strings.Contains(toString(doc), "PRIVATE") || strings.Contains(toString(doc), "services") {
		t.Fatalf("export: %v", doc)
	}
	if doc := n.Export(true, true); !strings.Contains(toString(doc), "PRIVATE") || !strings.Contains(toString(doc), "services") {
		t.Fatalf("export --full --private: %v", doc)
	}
}

func toString(v any) string { return strings.ReplaceAll(strings.TrimSpace(fmtAny(v)), "\n", " ") }

func fmtAny(v any) string { return fmt.Sprint(v) }
