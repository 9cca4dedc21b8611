package osimage

import (
	"os"
	"path/filepath"
	"strings"
)

// ReleaseVersion is the OS version (VERSION_ID of etc/os-release) of the
// root file system at root, "" when it says none.
func ReleaseVersion(root string) string {
	b, err := os.ReadFile(filepath.Join(root, "etc/os-release"))
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VERSION_ID="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}
