package mount

import (
	"bufio"
	"strings"
	"testing"
)

func TestParseMountinfo(t *testing.T) {
	in := `22 1 0:21 / /proc rw,nosuid - proc proc rw
30 1 254:2 / /run/ros/state ro,relatime shared:1 - ext4 /dev/vda2 ro
31 1 0:40 / /media/my\040disk rw - vfat /dev/sdb1 rw
bad line
`
	ms, err := parseMountinfo(bufio.NewScanner(strings.NewReader(in)))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 3 {
		t.Fatalf("got %d mounts: %v", len(ms), ms)
	}
	if ms[1] != (Info{Target: "/run/ros/state", FSType: "ext4", Source: "/dev/vda2"}) {
		t.Errorf("state: %+v", ms[1])
	}
	if ms[2].Target != "/media/my disk" {
		t.Errorf("escaped space: %q", ms[2].Target)
	}
}
