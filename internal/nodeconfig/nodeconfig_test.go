package nodeconfig

import (
	"context"
	"errors"
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

func layer(name string, doc map[string]any) config.Layer { return config.Layer{Name: name, Doc: doc} }

// A bad layer at boot is reported and skipped; the node runs the others,
// later layers winning.
func TestSettleSkipsWhatBreaksTheWhole(t *testing.T) {
	var problems []string
	n := &NodeConfig{
		image: layer("image", map[string]any{"hostname": "image"}),
		ds: []config.Layer{
			layer("nocloud", map[string]any{"hostname": "from-nocloud"}),
			layer("ec2", map[string]any{"hostname": "breaks"}),
		},
		user:    layer("user", map[string]any{"rancher": map[string]any{"sysctl": map[string]any{"vm.swappiness": "1"}}}),
		cmdline: layer("kernel command line", map[string]any{}),
		r: Reporter{
			Problem: func(msg string) { problems = append(problems, msg) },
			Valid: func(_ context.Context, cfg config.Config) error {
				if cfg.Hostname == "breaks" {
					return errors.New("service x does not parse")
				}
				return nil
			},
		},
	}
	n.settle(context.Background())
	if cfg := n.Config(); cfg.Hostname != "from-nocloud" || cfg.Rancher.Sysctl["vm.swappiness"] != "1" {
		t.Fatalf("config %+v", cfg)
	}
	if len(problems) != 1 || !strings.Contains(problems[0], "ec2: service x does not parse; skipped") {
		t.Fatalf("problems %q", problems)
	}
	if len(n.Datasources()) != 1 {
		t.Fatalf("datasources %v", n.Datasources())
	}
}

// A proposal is checked whole and changes nothing until committed; the
// kernel command line still wins over the user.
func TestProposeAndCommit(t *testing.T) {
	n := &NodeConfig{
		image:   layer("image", map[string]any{"hostname": "image"}),
		user:    layer("user", map[string]any{}),
		cmdline: layer("kernel command line", map[string]any{"rancher": map[string]any{"debug": true}}),
	}
	n.settle(context.Background())
	if _, err := n.Propose(layer("user", map[string]any{"hostnme": "x"}), nil); err == nil || !strings.Contains(err.Error(), "hostnme") {
		t.Fatalf("unknown key: %v", err)
	}
	if _, err := n.Propose(layer("user", map[string]any{"hostname": "-bad-"}), nil); err == nil || !strings.Contains(err.Error(), "hostname") {
		t.Fatalf("bad value: %v", err)
	}
	p, err := n.Propose(layer("user", map[string]any{"hostname": "n1", "rancher": map[string]any{"debug": false}}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if n.Config().Hostname != "image" {
		t.Fatal("a proposal changed the node's config")
	}
	if p.Config.Hostname != "n1" || !p.Config.Rancher.Debug || p.Old.Hostname != "image" {
		t.Fatalf("proposal %+v", p.Config)
	}
	n.Commit(p)
	if n.Config().Hostname != "n1" || n.User().Doc["hostname"] != "n1" {
		t.Fatalf("after commit: %+v", n.Config())
	}
}

func TestSecretsNeverExported(t *testing.T) {
	auths := map[string]any{"registry.example:5000": map[string]any{"username": "u", "password": "SECRET"}}
	n := &NodeConfig{
		image:   layer("image", map[string]any{}),
		user:    layer("user", map[string]any{"rancher": map[string]any{"registry_auths": auths}}),
		cmdline: layer("kernel command line", map[string]any{}),
	}
	n.settle(context.Background())
	for _, full := range []bool{false, true} {
		if doc := n.Export(full, true); strings.Contains(toString(doc), "SECRET") {
			t.Fatalf("export (full %v) has the password: %v", full, doc)
		}
	}
	changes := []config.Change{{Key: "rancher.registry_auths[registry.example:5000].password", Old: "a", New: "b"}, {Key: "hostname", New: "h"}}
	HideSecrets(changes)
	if changes[0].Old != "(hidden)" || changes[0].New != "(hidden)" || changes[1].New != "h" {
		t.Fatalf("changes %+v", changes)
	}
}
