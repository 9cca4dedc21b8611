package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMergeLaterWins(t *testing.T) {
	img, err := ParseDoc("os-config.yml", []byte(`
hostname: rancher
rancher:
  environment: {A: "1", B: "2"}
  services:
    syslog: {image: rosos/syslog:v1, restart: always}
`))
	if err != nil {
		t.Fatal(err)
	}
	user, err := ParseDoc("user", []byte(`
hostname: node1
ssh_authorized_keys: [ssh-ed25519 AAAA x]
rancher:
  environment: {B: "3"}
  services:
    test: {image: rosos/syslog:v1}
`))
	if err != nil {
		t.Fatal(err)
	}
	c, err := Merge(img, user)
	if err != nil {
		t.Fatal(err)
	}
	if c.Hostname != "node1" || len(c.SSHAuthorizedKeys) != 1 {
		t.Fatalf("merged %+v", c)
	}
	if c.Rancher.Environment["A"] != "1" || c.Rancher.Environment["B"] != "3" {
		t.Fatalf("environment %v", c.Rancher.Environment)
	}
	if len(c.Rancher.Services) != 2 {
		t.Fatalf("services %v", c.Rancher.Services)
	}
}

func TestParseDocErrorsNameTheDocument(t *testing.T) {
	if _, err := ParseDoc("cloud-config.yml", []byte("a: [")); err == nil || !strings.Contains(err.Error(), "cloud-config.yml: not valid YAML") {
		t.Fatalf("err = %v", err)
	}
	if _, err := ParseDoc("x.yml", []byte("hostname: [a, b]")); err == nil || !strings.Contains(err.Error(), "x.yml") {
		t.Fatalf("wrong type: err = %v", err)
	}
}

func TestReadDirSkipsBadDocuments(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.yml"), []byte("hostname: a\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "b.yml"), []byte("hostname: [\n"), 0o644)
	ls, errs := ReadDir(dir)
	if len(ls) != 1 || len(errs) != 1 || !strings.Contains(errs[0].Error(), "b.yml") {
		t.Fatalf("layers %v errs %v", ls, errs)
	}
}

func TestWriteAtomic(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sub", "f.yml")
	if err := WriteAtomic(p, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("stat %v %v", fi, err)
	}
	ents, _ := os.ReadDir(filepath.Dir(p))
	if len(ents) != 1 {
		t.Fatalf("temporary files left: %v", ents)
	}
}
