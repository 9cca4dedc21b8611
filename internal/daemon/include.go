package daemon

import (
	"os"
	"path/filepath"

	"github.com/rosos/ros/config"
	"github.com/rosos/ros/internal/paths"
)

// setInclude writes rancher.services_include.NAME into the user's config
// (what `ros config set` writes), atomically.
func setInclude(name string, on bool) error {
	return config.UpdateFile(paths.UserConfig, func(doc map[string]any) (bool, error) {
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

// writeIncluded stores an enabled service's compose file.
func writeIncluded(name string, b []byte) error {
	if err := os.MkdirAll(paths.IncludedDir, 0o700); err != nil {
		return err
	}
	return config.WriteAtomic(filepath.Join(paths.IncludedDir, name+".yml"), b, 0o600)
}
