package osimage

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkVerify checks a layer shaped like a root file system: 20,000
// files in 2,000 directories and 2,000 symlinks (the OS image has about
// 30,000 entries). The entry rules must stay linear in the entries.
func BenchmarkVerify(b *testing.B) {
	var es []entry
	for d := range 2000 {
		es = append(es, dirEntry(fmt.Sprintf("usr/lib/d%d/", d)), symlink(fmt.Sprintf("usr/lib/d%d/link", d), "/usr/lib/x"))
		for f := range 10 {
			es = append(es, reg(fmt.Sprintf("usr/lib/d%d/f%d", d, f), "x"))
		}
	}
	a, err := open(b, archive(b, osLabels, rawLayer(tarOf(b, es...))))
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if err := a.Verify(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}
