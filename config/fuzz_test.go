package config

import (
	"os"
	"path/filepath"
	"testing"
)

// seeds adds the documents in testdata/seed as fuzz seeds.
func seeds(f *testing.F) {
	paths, _ := filepath.Glob("testdata/seed/*.yml")
	if len(paths) == 0 {
		f.Fatal("no seed documents in testdata/seed")
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// FuzzParseDoc: any bytes give a layer or an error, never a panic, and a
// layer that parses decodes and merges.
func FuzzParseDoc(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := ParseDoc("fuzz", b)
		if err != nil {
			return
		}
		if _, err := Merge(l); err != nil {
			t.Fatalf("a document that parsed does not merge: %v", err)
		}
		_, _ = ParseUserData("fuzz", b)
	})
}

// FuzzMerge: merging two good documents gives a config, in either order,
// and the later layer's hostname wins.
func FuzzMerge(f *testing.F) {
	paths, _ := filepath.Glob("testdata/seed/*.yml")
	for i := range paths {
		a, _ := os.ReadFile(paths[i])
		b, _ := os.ReadFile(paths[(i+1)%len(paths)])
		f.Add(a, b)
	}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		la, err := ParseDoc("a", a)
		if err != nil {
			return
		}
		lb, err := ParseDoc("b", b)
		if err != nil {
			return
		}
		c, err := Merge(la, lb)
		if err != nil {
			t.Fatalf("merge of two good documents: %v", err)
		}
		if h, ok := lb.Doc["hostname"].(string); ok && c.Hostname != h {
			t.Fatalf("later hostname %q lost: %q", h, c.Hostname)
		}
		_ = Diff(la.Doc, MergeDocs(la, lb))
	})
}

// FuzzCmdline: any command line parses without panic.
func FuzzCmdline(f *testing.F) {
	f.Add("rancher.network.dns.nameservers=[1.1.1.1] rancher.debug cloud-config-url=http://x")
	f.Add(`"rancher.environment={A: b}" rancher.x.y=`)
	f.Fuzz(func(t *testing.T, s string) {
		c := ParseCmdline(s)
		if _, err := Merge(c.Layer); err != nil {
			t.Fatalf("command line layer does not merge: %v", err)
		}
	})
}
