package compose

import (
	"context"
	"fmt"
	"os"
	"testing"

	"go.yaml.in/yaml/v3"
)

// imageServices reads the built-in services of os-config.tpl.yml.
func imageServices(b testing.TB) map[string]any {
	raw, err := os.ReadFile("../../os-config.tpl.yml")
	if err != nil {
		b.Fatal(err)
	}
	var doc struct {
		Rancher struct {
			Services map[string]any `yaml:"services"`
		} `yaml:"rancher"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		b.Fatal(err)
	}
	return doc.Rancher.Services
}

// Parsing the image's built-in services with compose-go, as at each boot.
func BenchmarkParseBuiltin(b *testing.B) {
	raw := imageServices(b)
	env := map[string]string{"VERSION": "v1"}
	for b.Loop() {
		if _, err := Parse(context.Background(), raw, env); err != nil {
			b.Fatal(err)
		}
	}
}

// Ordering 200 services with after/before labels and depends_on.
func BenchmarkOrder(b *testing.B) {
	var ss []Service
	for i := 0; i < 200; i++ {
		s := Service{Name: fmt.Sprintf("s%03d", i), Detach: true}
		if i > 0 {
			s.After = []string{fmt.Sprintf("s%03d", i-1)}
		}
		if i > 1 {
			s.DependsOn = []string{fmt.Sprintf("s%03d", i/2)}
		}
		if i < 199 && i%7 == 0 {
			s.Before = []string{fmt.Sprintf("s%03d", i+1)}
		}
		ss = append(ss, s)
	}
	for b.Loop() {
		if _, err := Order(ss); err != nil {
			b.Fatal(err)
		}
	}
}
