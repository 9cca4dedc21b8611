package config

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

// NoCloud reads a NoCloud seed mounted at dir: user-data (a #cloud-config
// document) and meta-data (instance-id, local-hostname). It returns the
// user data as a layer, with local-hostname as hostname when the user data
// sets none.
func NoCloud(dir string) (Layer, error) {
	name := "nocloud:user-data"
	ud, err := os.ReadFile(filepath.Join(dir, "user-data"))
	if err != nil && !os.IsNotExist(err) {
		return Layer{}, fmt.Errorf("config: %s: %w", name, err)
	}
	var layer Layer
	switch {
	case len(bytes.TrimSpace(ud)) == 0:
		layer = Layer{Name: name, Doc: map[string]any{}}
	case bytes.HasPrefix(ud, []byte("#cloud-config")):
		if layer, err = ParseDoc(name, ud); err != nil {
			return Layer{}, err
		}
	default:
		first, _, _ := strings.Cut(string(ud), "\n")
		return Layer{}, fmt.Errorf("config: %s: starts with %q: want a #cloud-config document", name, first)
	}
	md, err := os.ReadFile(filepath.Join(dir, "meta-data"))
	if err == nil {
		var meta struct {
			LocalHostname string `yaml:"local-hostname"`
		}
		if err := yaml.Unmarshal(md, &meta); err != nil {
			return Layer{}, fmt.Errorf("config: nocloud:meta-data: not valid YAML: %w", err)
		}
		if _, set := layer.Doc["hostname"]; !set && meta.LocalHostname != "" {
			layer.Doc["hostname"] = meta.LocalHostname
		}
	}
	return layer, nil
}
