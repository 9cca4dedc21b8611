//go:build e2e

package e2e

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// parseFloat reads a number a node printed, failing the test if it is not.
func parseFloat(t *testing.T, s string) float64 {
	t.Helper()
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		t.Fatalf("not a number: %q", s)
	}
	return f
}

func regexpLines(s, pattern string) []string {
	return regexp.MustCompile(pattern).FindAllString(s, -1)
}

// buildSetting returns KEY's value in a shell-style settings file of the
// repository (build/debian.env, images/kernel/version): what the image was
// built from, so that a test checks the node against it.
func buildSetting(t *testing.T, file, key string) string {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", file))
	if err != nil {
		t.Fatalf("build setting %s: %v", key, err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(s.Text()), key+"="); ok {
			return v
		}
	}
	t.Fatalf("build setting %s: not in %s", key, file)
	return ""
}

// goModVersion returns the version go.mod pins module at (a require line):
// what the image's Go binaries were built from.
func goModVersion(t *testing.T, module string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "go.mod"))
	if err != nil {
		t.Fatalf("go.mod: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "require "))
		if len(f) >= 2 && f[0] == module {
			return f[1]
		}
	}
	t.Fatalf("go.mod does not require %s", module)
	return ""
}
