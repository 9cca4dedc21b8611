package config

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"flag"
	"os"
	"slices"
	"strings"
	"testing"
)

func TestCheckNamesKeyPaths(t *testing.T) {
	cases := map[string]string{
		"hostnme: x\n": "hostnme: unknown key",
		"rancher:\n  network:\n    interfaces:\n      eth0:\n        mtu: big\n": `rancher.network.interfaces.eth0.mtu: want a whole number, got "big"`,
		"rancher:\n  sysctl: [a]\n":                                                   "rancher.sysctl: want a map, got a list",
		"write_files:\n- path: /x\n  permissions: '0999'\n":                           "write_files[0].permissions: want an octal mode",
		"write_files:\n- path: x\n":                                                   `write_files[0].path: want an absolute path, got "x"`,
		"runcmd:\n- {a: b}\n":                                                         "runcmd[0]: want a command",
		"rancher:\n  network:\n    dns:\n      nameservers: [1.2.3]\n":                "rancher.network.dns.nameservers[0]",
		"rancher:\n  services_include:\n    k3s: maybe\n":                             `rancher.services_include.k3s: want true or false, got "maybe"`,
		"hostname: bad_name!\n":                                                       "hostname:",
		"rancher:\n  network:\n    interfaces:\n      eth0:\n        vlans: '5000'\n": "rancher.network.interfaces.eth0.vlans",
		"rancher:\n  docker:\n    tls: true\n":                                        "rancher.docker.tls",
		"rancher:\n  system_docker:\n    image: x\n":                                  "rancher.system_docker: a RancherOS v1 key this OS does not support: there is no system Docker",
		"rancher:\n  state:\n    mdadm_scan: true\n":                                  "rancher.state.mdadm_scan: a RancherOS v1 key this OS does not support",
		"rancher:\n  kubernetes:\n    role: master\n":                                 "rancher.kubernetes.role",
		"rancher:\n  kubernetes:\n    role: agent\n":                                  "rancher.kubernetes.server_url: an agent needs its server's URL",
		"rancher:\n  kubernetes:\n    role: agent\n    server_url: https://s:6443\n":  "rancher.kubernetes.token: an agent needs the cluster's token",
		"rancher:\n  kubernetes:\n    server_url: https://s:6443\n":                   "rancher.kubernetes.server_url: a server does not join another",
		"rancher:\n  kubernetes:\n    node_ip: 10.0.0\n":                              `rancher.kubernetes.node_ip: "10.0.0" is not an IP address`,
		"rancher:\n  kubernetes:\n    cluster_cidr: 10.42.0.0\n":                      "rancher.kubernetes.cluster_cidr",
		"rancher:\n  kubernetes:\n    node_taints: [a=b]\n":                           "rancher.kubernetes.node_taints[0]: \"a=b\": want KEY=VALUE:EFFECT",
		"rancher:\n  kubernetes:\n    node_taints: [a=b:Never]\n":                     "rancher.kubernetes.node_taints[0]: \"a=b:Never\": the effect must be",
		"rancher:\n  kubernetes:\n    node_labels: [nolabel]\n":                       "rancher.kubernetes.node_labels[0]",
		"rancher:\n  kubernetes:\n    extra_args:\n      kubelt: [v=2]\n":             "rancher.kubernetes.extra_args.kubelt: not a component",
		"rancher:\n  kubernetes:\n    datastore: mysql\n":                             "rancher.kubernetes.datastore",
		"rancher:\n  kubernetes:\n    server_url: [x]\n":                              "rancher.kubernetes.server_url: want a string",
	}
	for doc, want := range cases {
		_, err := ParseDoc("user", []byte(doc))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q:\n err  %v\n want %q", doc, err, want)
		}
	}
}

func TestV1CloudConfigParses(t *testing.T) {
	doc := `#cloud-config
hostname: node1
ssh_authorized_keys: [ssh-ed25519 AAAA a]
write_files:
- path: /etc/motd
  permissions: "0644"
  owner: root
  content: hello
- path: /opt/x
  permissions: 0755
  encoding: b64
  content: aGk=
  append: true
- path: /etc/in-console
  container: console
  content: x
runcmd:
- echo one
- [touch, /tmp/two]
-
- ""
bootcmd: ["echo early"]
mounts:
- [/dev/vdb, /mnt/data, ext4, ""]
rancher:
  network:
    http_proxy: http://proxy:3128
    interfaces:
      eth0: {dhcp: true}
      eth1: {address: 10.0.0.5/24, gateway: 10.0.0.1, mtu: 1400, vlans: "100,200:mgmt"}
      mac=52:54:00:12:34:56: {dhcp: true}
      br0: {bridge: true, address: 10.1.0.1/24}
      eth2: {bridge: br0}
      bond0: {bond_opts: {mode: active-backup, miimon: 100}}
      eth3: {bond: bond0}
    dns: {nameservers: [1.1.1.1], search: [example.com]}
  sysctl: {net.ipv4.ip_forward: 1}
  modules: [dummy]
  environment: {A: b}
  services_include: {k3s: false}
  ssh: {port: 2222}
  docker: {extra_args: [--debug], registry_mirror: "http://m:5000"}
  cloud_init: {datasources: [nocloud, ec2]}
  restart_services: [ntp]
`
	l, err := ParseDoc("v1", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	c, err := Merge(l)
	if err != nil {
		t.Fatal(err)
	}
	if c.WriteFiles[0].Permissions != 0o644 || c.WriteFiles[1].Permissions != 0o755 || c.WriteFiles[2].Container != "console" {
		t.Errorf("write_files %+v", c.WriteFiles)
	}
	nonEmpty := 0
	for _, r := range c.Runcmd {
		if !r.Empty() {
			nonEmpty++
		}
	}
	if nonEmpty != 2 || c.Runcmd[0].Shell != "echo one" || c.Runcmd[1].Args[0] != "touch" {
		t.Errorf("runcmd %+v", c.Runcmd)
	}
	if c.Rancher.Network.Interfaces["br0"].Bridge != "true" || c.Rancher.Sysctl["net.ipv4.ip_forward"] != "1" || c.Rancher.Network.Interfaces["bond0"].BondOpts["miimon"] != "100" {
		t.Errorf("network %+v sysctl %v", c.Rancher.Network, c.Rancher.Sysctl)
	}
	v, _ := ParseVlans(c.Rancher.Network.Interfaces["eth1"].Vlans)
	if len(v) != 2 || v[1].Name != "mgmt" {
		t.Errorf("vlans %+v", v)
	}
}

func TestKeysSetGetDiff(t *testing.T) {
	doc := map[string]any{}
	for k, v := range map[string]string{
		"rancher.network.dns.nameservers":           "[8.8.8.8, 1.1.1.1]",
		"hostname":                                  "n1",
		"rancher.network.interfaces[eth0.100].dhcp": "true",
		"rancher.services_include.k3s":              "true",
	} {
		val, err := ParseValue(v)
		if err != nil {
			t.Fatal(err)
		}
		if err := Set(doc, k, val); err != nil {
			t.Fatal(err)
		}
	}
	if err := Check(doc); err != nil {
		t.Fatal(err)
	}
	v, ok, _ := Get(doc, "rancher.network.interfaces[eth0.100].dhcp")
	if !ok || v != true {
		t.Fatalf("get: %v %v", v, ok)
	}
	if err := Set(doc, "hostname.x", 1); err == nil || !strings.Contains(err.Error(), "hostname: is \"n1\", not a map") {
		t.Fatalf("set into a scalar: %v", err)
	}
	old := Copy(doc)
	Set(doc, "hostname", "n2")
	Set(doc, "rancher.sysctl.vm.swappiness", "10") // the rest of the path is one sysctl key
	ch := Diff(old, doc)
	if len(ch) != 2 || ch[0].Key != "hostname" || ch[0].Old != "n1" || ch[0].New != "n2" || ch[1].Key != "rancher.sysctl" {
		t.Fatalf("diff %+v", ch)
	}
	if err := Check(doc); err != nil {
		t.Fatalf("check: %v", err)
	}
	if v, ok, _ := Get(doc, "rancher.sysctl.vm.swappiness"); !ok || v != "10" {
		t.Fatalf("get sysctl: %v %v", v, ok)
	}
	Set(doc, "rancher.network.interfaces.eth0.mtu.x", 1)
	if err := Check(doc); err == nil || !strings.Contains(err.Error(), "rancher.network.interfaces.eth0.mtu: want a whole number, got a map") {
		t.Fatalf("check nested: %v", err)
	}
	if !Under("rancher.network.dns.nameservers", "rancher.network") || Under("rancher.networks", "rancher.network") || !Under("rancher.network.interfaces[eth0.100]", "rancher.network.interfaces") {
		t.Fatal("Under")
	}
}

func TestParseCmdline(t *testing.T) {
	c := ParseCmdline(`BOOT_IMAGE=/vmlinuz console=ttyS0 rancher.network.dns.nameservers=[9.9.9.9] rancher.debug "rancher.environment={A: b c}" rancher.bogus=1 rancher.network.interfaces.eth0.mtu=x cloud-config-url=http://h/u ros.slot=A`)
	cfg, err := Merge(c.Layer)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Rancher.Network.DNS.Nameservers[0] != "9.9.9.9" || !cfg.Rancher.Debug || cfg.Rancher.Environment["A"] != "b c" || c.CloudConfigURL != "http://h/u" {
		t.Fatalf("%+v %+v", cfg.Rancher, c)
	}
	if len(c.Problems) != 2 || !strings.Contains(strings.Join(c.Problems, "\n"), "rancher.bogus: unknown key") {
		t.Fatalf("problems %q", c.Problems)
	}
}

func TestParseUserData(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("#cloud-config\nhostname: zipped\n"))
	zw.Close()
	u, err := ParseUserData("ud", gz.Bytes())
	if err != nil || u.Config == nil || u.Config.Doc["hostname"] != "zipped" {
		t.Fatalf("gzip: %+v %v", u, err)
	}
	if u, err := ParseUserData("ud", []byte("#!/bin/sh\ntrue\n")); err != nil || u.Script == nil {
		t.Fatalf("script: %+v %v", u, err)
	}
	if _, err := ParseUserData("ud", []byte("#cloud-config\nrancher: {bad: 1}\n")); err == nil || !strings.Contains(err.Error(), "rancher.bad: unknown key") {
		t.Fatalf("bad: %v", err)
	}
}

func TestDecodeEncodings(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("zipped"))
	zw.Close()
	for enc, content := range map[string]string{"": "plain", "b64": "cGxhaW4=", "gzip": gz.String()} {
		b, err := Decode(enc, content)
		if err != nil || (string(b) != "plain" && string(b) != "zipped") {
			t.Errorf("%q: %q %v", enc, b, err)
		}
	}
	if _, err := Decode("rot13", "x"); err == nil {
		t.Error("unknown encoding accepted")
	}
}

var update = flag.Bool("update", false, "rewrite docs/config.schema.json")

// The shipped schema (docs/config.schema.json, copied into the image) is
// the one the types give.
func TestSchemaIsCurrent(t *testing.T) {
	b, err := Schema()
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	props := v["properties"].(map[string]any)["rancher"].(map[string]any)["properties"].(map[string]any)
	if _, ok := props["network"]; !ok || v["additionalProperties"] != false {
		t.Fatalf("schema lacks rancher.network or allows unknown keys")
	}
	const path = "../docs/config.schema.json"
	if *update {
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	have, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(have, append(b, '\n')) {
		t.Fatalf("%s is not the schema of the types (%v): run go test ./config -run Schema -update", path, err)
	}
}

// Each v1 key said to be unsupported is refused with its reason, and none
// of them is a key the types know (which the reason would then hide).
func TestV1UnsupportedKeys(t *testing.T) {
	for key, why := range v1Unsupported {
		parts := strings.Split(key, ".")
		var doc any = true
		for i := len(parts) - 1; i >= 0; i-- {
			doc = map[string]any{parts[i]: doc}
		}
		err := Check(doc.(map[string]any))
		if err == nil || !strings.Contains(err.Error(), key+": a RancherOS v1 key this OS does not support: "+why) {
			t.Errorf("%s: %v", key, err)
		}
	}
}

func TestKeys(t *testing.T) {
	keys := Keys()
	for _, want := range []string{"hostname", "rancher.network.dns.nameservers", "rancher.docker.extra_args", "rancher.upgrade.public_keys"} {
		if !slices.Contains(keys, want) {
			t.Errorf("Keys() lacks %s", want)
		}
	}
	for _, k := range keys {
		if err := Check(mustDoc(t, k)); err != nil && strings.Contains(err.Error(), "unknown key") {
			t.Errorf("Keys() lists %s, which Check does not know: %v", k, err)
		}
	}
}

// mustDoc is a document that sets key to null, which every type takes.
func mustDoc(t *testing.T, key string) map[string]any {
	t.Helper()
	doc := map[string]any{}
	m := doc
	parts := strings.Split(key, ".")
	for _, p := range parts[:len(parts)-1] {
		next := map[string]any{}
		m[p] = next
		m = next
	}
	m[parts[len(parts)-1]] = nil
	return doc
}
