// Package services is the catalog: the optional services, compose files in
// catalog/, that `ros service enable NAME` turns on. They are built into the
// ros binary.
package services

import (
	"embed"
	"sort"
	"strings"
)

//go:embed catalog/*.yml
var catalog embed.FS

// Names lists the catalog's services.
func Names() []string {
	ents, _ := catalog.ReadDir("catalog")
	var out []string
	for _, e := range ents {
		out = append(out, strings.TrimSuffix(e.Name(), ".yml"))
	}
	sort.Strings(out)
	return out
}

// Doc returns a catalog service's compose file.
func Doc(name string) ([]byte, bool) {
	b, err := catalog.ReadFile("catalog/" + name + ".yml")
	return b, err == nil
}
