package compose

import (
	"context"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ParseDoc reads a compose file (a top-level services: map, or the
// map of services alone, as RancherOS v1 took them) into services.
func ParseDoc(ctx context.Context, where string, b []byte, env map[string]string) ([]Service, error) {
	raw, err := DocServices(where, b)
	if err != nil {
		return nil, err
	}
	defs, err := Parse(ctx, raw, env)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	return defs, nil
}

// DocServices returns the map of services of a compose file, what ParseDoc
// gives Parse.
func DocServices(where string, b []byte) (map[string]any, error) {
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
	return raw, nil
}
