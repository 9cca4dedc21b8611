//go:build e2e

package e2e

import (
	"regexp"
	"strings"
)

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func regexpLines(s, pattern string) []string {
	return regexp.MustCompile(pattern).FindAllString(s, -1)
}
