package nodeconfig

import (
	"fmt"
	"strings"
	"testing"

	"github.com/rosos/ros/config"
)

func TestExportLeavesOutPrivateKeys(t *testing.T) {
	n := &NodeConfig{
		image: config.Layer{Doc: map[string]any{"rancher": map[string]any{"services": map[string]any{"x": map[string]any{}}}}},
		user:  config.Layer{Doc: map[string]any{"hostname": "h", "rancher": map[string]any{"ssh": map[string]any{"keys": map[string]any{"ssh_host_ed25519_key": "PRIVATE"}}}}},
	}
	n.merged = config.MergeDocs(n.layersLocked()...)
	if doc := n.Export(false, false); doc["hostname"] != "h" || strings.Contains(toString(doc), "PRIVATE") || strings.Contains(toString(doc), "services") {
		t.Fatalf("export: %v", doc)
	}
	if doc := n.Export(true, true); !strings.Contains(toString(doc), "PRIVATE") || !strings.Contains(toString(doc), "services") {
		t.Fatalf("export --full --private: %v", doc)
	}
}

func toString(v any) string { return strings.ReplaceAll(strings.TrimSpace(fmtAny(v)), "\n", " ") }

func fmtAny(v any) string { return fmt.Sprint(v) }
