package containerd

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/rosos/ros/internal/registry"
	"golang.org/x/sys/unix"
)

// Preloaded is a service image shipped in the OS image: its root file
// system unpacked at build time in the read-only slot, and the parts of its
// image config a container needs. A service runs on it through an overlay
// whose writable layer is in /run, so a node never imports or copies the
// images it boots with; an upgrade brings new images with the new slot.
type Preloaded struct {
	Ref        string   `json:"ref"`
	Entrypoint []string `json:"entrypoint,omitempty"`
	Cmd        []string `json:"cmd,omitempty"`
	Env        []string `json:"env,omitempty"`
	WorkingDir string   `json:"working_dir,omitempty"`
	User       string   `json:"user,omitempty"`
	Dir        string   `json:"-"` // holds image.json and rootfs/
}

// LoadPreloaded reads dir/*/image.json, by normalized image name.
func LoadPreloaded(dir string) (map[string]Preloaded, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*", "image.json"))
	if err != nil {
		return nil, err
	}
	out := map[string]Preloaded{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		var img Preloaded
		if err := json.Unmarshal(b, &img); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		name, err := registry.NormalizeRef(img.Ref)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		img.Dir = filepath.Dir(p)
		out[name] = img
	}
	return out, nil
}

// Args is the command line of a container of this image, as compose
// combines it with the service's entrypoint and command.
func (p Preloaded) Args(entrypoint, command []string) []string {
	switch {
	case len(entrypoint) > 0:
		return append(append([]string{}, entrypoint...), command...)
	case len(command) > 0:
		return append(append([]string{}, p.Entrypoint...), command...)
	}
	return append(append([]string{}, p.Entrypoint...), p.Cmd...)
}

// mountRoot mounts the service's root: an overlay of the image's root
// (read-only, in the slot) and a writable layer under dir. fresh discards
// what an earlier container of the service wrote, as a new container would.
func mountRoot(dir string, p Preloaded, fresh bool) (string, error) {
	merged := filepath.Join(dir, "merged")
	if mounted(merged) {
		if !fresh {
			return merged, nil
		}
		if err := unmountRoot(dir); err != nil {
			return "", err
		}
	}
	upper, work := filepath.Join(dir, "upper"), filepath.Join(dir, "work")
	if fresh {
		if err := os.RemoveAll(dir); err != nil {
			return "", err
		}
	}
	for _, d := range []string{upper, work, merged} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return "", err
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", filepath.Join(p.Dir, "rootfs"), upper, work)
	if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		return "", fmt.Errorf("mount the root of %s: %w", p.Ref, err)
	}
	return merged, nil
}

// unmountRoot undoes mountRoot and removes the writable layer.
func unmountRoot(dir string) error {
	merged := filepath.Join(dir, "merged")
	if mounted(merged) {
		if err := unix.Unmount(merged, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("unmount %s: %w", merged, err)
		}
	}
	return os.RemoveAll(dir)
}

// mounted reports whether p is a mount point (on another device than its
// parent).
func mounted(p string) bool {
	var st, parent unix.Stat_t
	if unix.Stat(p, &st) != nil || unix.Stat(filepath.Dir(p), &parent) != nil {
		return false
	}
	return st.Dev != parent.Dev
}
