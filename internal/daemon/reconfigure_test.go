package daemon

import (
	"strings"
	"testing"

	"github.com/rosos/ros/config"
	"github.com/rosos/ros/internal/compose"
)

func TestServiceChanges(t *testing.T) {
	mk := func(name, image string, labels map[string]string) compose.Service {
		s := compose.Service{Name: name, Image: image, Labels: labels}
		s.Hash = compose.Rehash(s)
		return s
	}
	cur := map[string]compose.Service{}
	for _, s := range []compose.Service{mk("net", "n", map[string]string{compose.LabelReloadConfig: "true"}), mk("a", "a", nil), mk("gone", "g", nil), mk("ntp", "t", nil)} {
		cur[s.Name] = s
	}
	defs := []compose.Service{mk("net", "n", map[string]string{compose.LabelReloadConfig: "true"}), mk("a", "a2", nil), mk("new", "x", nil), mk("ntp", "t", nil)}
	cfg := config.Config{Rancher: config.Rancher{RestartServices: []string{"ntp"}}}
	start, stop, restart := serviceChanges(cur, defs, []config.Change{{Key: "rancher.network.dns.nameservers"}}, cfg)
	if strings.Join(start, ",") != "new" || strings.Join(stop, ",") != "gone" || strings.Join(restart, ",") != "a,net,ntp" {
		t.Fatalf("start %v stop %v restart %v", start, stop, restart)
	}
	_, _, restart = serviceChanges(cur, defs[:1], []config.Change{{Key: "rancher.services_include.k3s"}}, config.Config{})
	if len(restart) != 0 {
		t.Fatalf("services_include alone restarted %v", restart)
	}
}
