package config

import (
	"strings"
	"testing"
)

func TestRegistryCredentials(t *testing.T) {
	doc, err := ParseDoc("test", []byte(`#cloud-config
rancher:
  registry_auths:
    https://index.docker.io/v1/:
      auth: dXNlcjpwYXNzOndvcmQ=
    registry.example.com:5000:
      username: bob
      password: secret
`))
	if err != nil {
		t.Fatal(err)
	}
	c, err := Merge(doc)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]string{"registry-1.docker.io": "user pass:word", "docker.io": "user pass:word",
		"registry.example.com:5000": "bob secret", "REGISTRY.example.com:5000": "bob secret", "registry.example.com": ""} {
		u, p, ok, err := c.RegistryCredentials(host)
		got := ""
		if ok {
			got = u + " " + p
		}
		if err != nil || got != want {
			t.Errorf("%s: %q %v, want %q", host, got, err, want)
		}
	}
}

func TestRegistryAuthsAndPublicKeysChecked(t *testing.T) {
	for doc, want := range map[string]string{
		"rancher:\n  registry_auths:\n    r.example.com:\n      auth: '%%%'\n":                   "rancher.registry_auths[r.example.com]: auth: not base64",
		"rancher:\n  registry_auths:\n    r.example.com:\n      password: x\n":                   "rancher.registry_auths[r.example.com]: no credentials",
		"rancher:\n  registry_auths:\n    r.example.com:\n      auth: dTpw\n      username: u\n": "not both",
		"rancher:\n  upgrade:\n    public_keys: ['not a key']\n":                                 "rancher.upgrade.public_keys[0]: not a PEM public key",
	} {
		l, err := ParseDoc("test", []byte(doc))
		if err == nil {
			var c Config
			if c, err = Merge(l); err == nil {
				err = c.Validate()
			}
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v; want %q", doc, err, want)
		}
	}
}
