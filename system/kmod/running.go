package kmod

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Release is the running kernel's release (uname -r).
func Release() (string, error) {
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		return "", fmt.Errorf("uname: %w", err)
	}
	return unix.ByteSliceToString(uts.Release[:]), nil
}

// OpenRunning opens the index of the running kernel's modules
// (/lib/modules/RELEASE).
func OpenRunning() (*Index, error) {
	rel, err := Release()
	if err != nil {
		return nil, err
	}
	return Open(filepath.Join("/lib/modules", rel))
}

// ReadList reads a module list: one name a line, blank lines and lines
// starting with # left out.
func ReadList(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		if l := strings.TrimSpace(s.Text()); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}
