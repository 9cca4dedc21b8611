//go:build e2e

package e2e

import (
	"os"
	"testing"
)

// TestMain lets this binary serve a test's metadata service when QEMU runs
// it for a guest's connection (see metadata.go).
func TestMain(m *testing.M) {
	if f := os.Getenv(serveEnv); f != "" {
		serveMetadata(f)
		os.Exit(0)
	}
	os.Exit(m.Run())
}
