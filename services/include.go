package services

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/rosos/ros/config"
)

// The catalog: optional services that `ros service enable NAME` turns on.
//
//go:embed catalog/*.yml
var catalog embed.FS

// IncludedDir holds the compose files of services enabled from a file or a
// URL, by name.
const IncludedDir = "/var/lib/rancher/conf/services"

// CatalogNames lists the catalog's services.
func CatalogNames() []string {
	ents, _ := catalog.ReadDir("catalog")
	var out []string
	for _, e := range ents {
		out = append(out, strings.TrimSuffix(e.Name(), ".yml"))
	}
	sort.Strings(out)
	return out
}

func catalogDoc(name string) ([]byte, bool) {
	b, err := catalog.ReadFile("catalog/" + name + ".yml")
	return b, err == nil
}

// ParseComposeDoc reads a compose file (a top-level services: map, or the
// map of services alone, as RancherOS v1 took them) into services.
func ParseComposeDoc(ctx context.Context, where string, b []byte, env map[string]string) ([]Service, error) {
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%s: not valid YAML: %s", where, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	raw := doc
	if s, ok := doc["services"]; ok {
		m, ok := s.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s: services: want a map of services", where)
		}
		for k := range doc {
			if k != "services" && k != "version" && k != "name" {
				return nil, fmt.Errorf("%s: top-level key %q is not supported (only services)", where, k)
			}
		}
		raw = m
	}
	if len(raw) == 0 {
		return nil, fmt.Errorf("%s: no services", where)
	}
	defs, err := Parse(ctx, raw, env)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	return defs, nil
}

var validName = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]*$`)

// Source is where an enabled service's compose file comes from.
type Source struct {
	Name    string // the name it is enabled as (services_include key)
	Kind    string // catalog, file, url
	Content []byte
}

// ResolveSource finds the compose document for ref: a catalog name, a URL,
// or (content given) a file the client read.
func ResolveSource(ctx context.Context, ref, name string, content []byte) (Source, error) {
	switch {
	case content != nil:
		if name == "" {
			name = strings.TrimSuffix(filepath.Base(ref), filepath.Ext(ref))
		}
		return Source{Name: name, Kind: "file", Content: content}, nil
	case strings.HasPrefix(ref, "http://") || strings.HasPrefix(ref, "https://"):
		if name == "" {
			name = strings.TrimSuffix(filepath.Base(ref), filepath.Ext(ref))
		}
		b, err := fetch(ctx, ref)
		if err != nil {
			return Source{}, err
		}
		return Source{Name: name, Kind: "url", Content: b}, nil
	}
	b, ok := catalogDoc(ref)
	if !ok {
		return Source{}, fmt.Errorf("%q is not a catalog service (%s), a file or a URL", ref, strings.Join(CatalogNames(), ", "))
	}
	return Source{Name: ref, Kind: "catalog", Content: b}, nil
}

func fetch(ctx context.Context, url string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch %s: %s", url, resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 1<<20))
}

// includedDoc returns the stored compose document of an enabled service.
func includedDoc(name string) ([]byte, string, error) {
	if b, err := os.ReadFile(filepath.Join(IncludedDir, name+".yml")); err == nil {
		return b, "file", nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, "", err
	}
	if b, ok := catalogDoc(name); ok {
		return b, "catalog", nil
	}
	return nil, "", fmt.Errorf("enabled service %s: no compose file in %s and not in the catalog", name, IncludedDir)
}

// setInclude writes rancher.services_include.NAME into the user's config
// (what `ros config set` writes), atomically.
func setInclude(name string, on bool) error {
	return config.UpdateFile(UserConfig, func(doc map[string]any) (bool, error) {
		r, _ := doc["rancher"].(map[string]any)
		if r == nil {
			r = map[string]any{}
			doc["rancher"] = r
		}
		inc, _ := r["services_include"].(map[string]any)
		if inc == nil {
			inc = map[string]any{}
			r["services_include"] = inc
		}
		inc[name] = on
		return true, nil
	})
}

func writeFileAtomic(path string, b []byte) error { return config.WriteAtomic(path, b, 0o600) }
