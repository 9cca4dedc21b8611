package config

import (
	"fmt"
	"strings"
	"testing"
)

// A node's layers: the image's config with its services, a datasource's
// document and the user's settings.
func benchLayers(b *testing.B) []Layer {
	var img strings.Builder
	img.WriteString("hostname: rancher\nrancher:\n  services:\n")
	for i := 0; i < 10; i++ {
		fmt.Fprintf(&img, "    svc%d:\n      image: rosos/svc%d:v1\n      restart: always\n      volumes: [/var/log:/var/log, /dev:/dev]\n      labels: {io.rancher.os.scope: system}\n", i, i)
	}
	a, err := ParseDoc("image", []byte(img.String()))
	if err != nil {
		b.Fatal(err)
	}
	ds, err := ParseDoc("nocloud", []byte("#cloud-config\nhostname: node1\nssh_authorized_keys: [ssh-ed25519 AAAA k]\nrancher:\n  network:\n    interfaces:\n      eth*: {dhcp: true}\n"))
	if err != nil {
		b.Fatal(err)
	}
	user, err := ParseDoc("user", []byte("rancher:\n  services_include: {k3s: true}\n  network:\n    dns:\n      nameservers: [1.1.1.1]\n"))
	if err != nil {
		b.Fatal(err)
	}
	return []Layer{a, ds, user}
}

func BenchmarkParseDoc(b *testing.B) {
	doc := []byte("#cloud-config\nhostname: node1\nssh_authorized_keys: [ssh-ed25519 AAAA k]\nrancher:\n  network:\n    interfaces:\n      eth*: {dhcp: true}\n")
	for b.Loop() {
		if _, err := ParseDoc("doc", doc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMerge(b *testing.B) {
	layers := benchLayers(b)
	for b.Loop() {
		if _, err := Merge(layers...); err != nil {
			b.Fatal(err)
		}
	}
}
