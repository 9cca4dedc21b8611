package host

import (
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
	got := Script([]config.Command{{Shell: "echo a > /tmp/x"}, {}, {Args: []string{"touch", "it's"}}, {Shell: "  "}})
	want := "echo a > /tmp/x\n'touch' 'it'\\''s'\n"
	if got != want {
		t.Fatalf("script:\n%q\nwant\n%q", got, want)
	}
	body := RuncmdScript(config.Config{Runcmd: []config.Command{{Shell: "r"}}, Rancher: config.Rancher{Network: config.Network{PostCmds: []string{"p"}}}}, []string{"/s/ec2"})
	if !strings.HasPrefix(body, "p\nr\n/s/ec2 ||") || !strings.Contains(body, "/opt/rancher/bin/start.sh") {
		t.Fatalf("runcmd script:\n%s", body)
	}
}
