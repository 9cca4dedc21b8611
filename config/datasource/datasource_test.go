package datasource

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rosos/ros/config"
)

func write(t *testing.T, dir, name, content string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestNoCloudSeedDirectory(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "user-data", "#cloud-config\nssh_authorized_keys: [k1]\n")
	write(t, dir, "meta-data", "instance-id: i-1\nlocal-hostname: seeded\npublic-keys: [k2]\n")
	r := &Reader{}
	res, err := r.Read(context.Background(), Source{Kind: "nocloud", Arg: dir})
	if err != nil {
		t.Fatal(err)
	}
	c, err := config.Merge(res.Layer())
	if err != nil {
		t.Fatal(err)
	}
	if res.InstanceID != "i-1" || c.Hostname != "seeded" || strings.Join(c.SSHAuthorizedKeys, ",") != "k1,k2" {
		t.Fatalf("got %+v / %+v", res, c)
	}
	write(t, dir, "user-data", "hello\n")
	if _, err := r.Read(context.Background(), Source{Kind: "nocloud", Arg: dir}); err == nil || !strings.Contains(err.Error(), "#cloud-config") {
		t.Fatalf("err = %v", err)
	}
	if _, err := r.Read(context.Background(), Source{Kind: "nocloud", Arg: filepath.Join(dir, "none")}); !errors.Is(err, ErrAbsent) {
		t.Fatalf("absent seed: err = %v", err)
	}
}

func TestConfigDriveDirectory(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "openstack/latest/meta_data.json", `{"uuid":"u-1","hostname":"cd-host","public_keys":{"b":"key-b","a":"key-a"}}`)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("#!/bin/sh\necho hi\n"))
	zw.Close()
	write(t, dir, "openstack/latest/user_data", gz.String())
	res, err := (&Reader{}).Read(context.Background(), Source{Kind: "configdrive", Arg: dir})
	if err != nil {
		t.Fatal(err)
	}
	if res.InstanceID != "u-1" || res.Hostname != "cd-host" || strings.Join(res.Keys, ",") != "key-a,key-b" || !bytes.HasPrefix(res.UserData.Script, []byte("#!/bin/sh")) {
		t.Fatalf("got %+v", res)
	}
}

func metadataServer(t *testing.T, files map[string]string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(b))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestEC2AndOpenStack(t *testing.T) {
	srv := metadataServer(t, map[string]string{
		"/latest/meta-data/instance-id":               "i-abc\n",
		"/latest/meta-data/local-hostname":            "ec2-host\n",
		"/latest/meta-data/public-keys/":              "0=mykey\n",
		"/latest/meta-data/public-keys/0/openssh-key": "ssh-ed25519 AAAA ec2\n",
		"/latest/user-data":                           "#cloud-config\nrancher:\n  sysctl: {vm.swappiness: 10}\n",
		"/openstack/latest/meta_data.json":            `{"uuid":"os-1","name":"os-host","public_keys":{"k":"ssh-ed25519 BBBB os"}}`,
	})
	srcs, err := ParseSources([]string{"ec2:" + srv.URL, "openstack:" + srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	r := &Reader{Wait: time.Second}
	res, err := r.Read(context.Background(), srcs[0])
	if err != nil {
		t.Fatal(err)
	}
	c, err := config.Merge(res.Layer())
	if err != nil {
		t.Fatal(err)
	}
	if res.InstanceID != "i-abc" || c.Hostname != "ec2-host" || len(c.SSHAuthorizedKeys) != 1 || c.Rancher.Sysctl["vm.swappiness"] != "10" {
		t.Fatalf("ec2: %+v / %+v", res, c)
	}
	res, err = r.Read(context.Background(), srcs[1])
	if err != nil {
		t.Fatal(err)
	}
	if res.InstanceID != "os-1" || res.Hostname != "os-host" || res.UserData.Config == nil || len(res.Keys) != 1 {
		t.Fatalf("openstack (no user_data): %+v", res)
	}
}

func TestNetworkSourceGivesUpAfterWait(t *testing.T) {
	srcs, err := ParseSources([]string{"url:http://127.0.0.1:1/user-data"})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = (&Reader{Wait: 1500 * time.Millisecond}).Read(context.Background(), srcs[0])
	if err == nil || !strings.Contains(err.Error(), "waited up to 1.5s") {
		t.Fatalf("err = %v", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatalf("took %s", time.Since(start))
	}
}

func TestParseSources(t *testing.T) {
	for _, bad := range []string{"floppy", "file:relative", "url:ftp://x"} {
		if _, err := ParseSources([]string{bad}); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("%s: err = %v", bad, err)
		}
	}
	s, err := ParseSources([]string{"ec2", "cmdline", "file:/x", "https://h/u"})
	if err != nil || len(s) != 3 || s[0].Arg != MetadataAddr || !s[0].Network || s[2].Kind != "url" {
		t.Fatalf("%+v %v", s, err)
	}
}
