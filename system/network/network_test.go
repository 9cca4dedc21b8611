package network

import (
	"strings"
	"testing"

	"github.com/rosos/ros/config"
)

func TestMatch(t *testing.T) {
	ifaces := map[string]config.Interface{
		"eth*":                  {DHCP: true},
		"eth1":                  {Address: "10.0.0.5/24"},
		"mac=52:54:00:12:34:99": {MTU: 9000},
		"ens*":                  {MTU: 1400},
	}
	for _, c := range []struct{ name, mac, key string }{
		{"eth0", "52:54:00:12:34:56", "eth*"},
		{"eth1", "52:54:00:12:34:57", "eth1"},
		{"eth2", "52:54:00:12:34:99", "mac=52:54:00:12:34:99"},
		{"ens3", "", "ens*"},
		{"wlan0", "", ""},
	} {
		_, key, ok := Match(ifaces, c.name, c.mac)
		if key != c.key || ok != (c.key != "") {
			t.Errorf("Match(%s, %s) = %q %v, want %q", c.name, c.mac, key, ok, c.key)
		}
	}
}

func TestResolvConf(t *testing.T) {
	got := ResolvConf([]string{"8.8.8.8", "1.1.1.1"}, []string{"example.com"})
	for _, want := range []string{"search example.com\n", "nameserver 8.8.8.8\nnameserver 1.1.1.1\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("resolv.conf %q lacks %q", got, want)
		}
	}
}
