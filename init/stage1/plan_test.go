package stage1

import (
	"reflect"
	"testing"
)

func TestParseCmdline(t *testing.T) {
	cases := []struct {
		in   string
		want Plan
	}{
		{"console=ttyS0", Plan{Slot: "A", Persistent: LabelPersistent}},
		{"ros.slot=B quiet", Plan{Slot: "B", Persistent: LabelPersistent}},
		{"ros.slot=A ros.persistent=none rd.modules=e1000,,ahci rd.break",
			Plan{Slot: "A", Modules: []string{"e1000", "ahci"}, Break: true}},
		{"ros.persistent=MYDATA", Plan{Slot: "A", Persistent: "MYDATA"}},
	}
	for _, c := range cases {
		got, err := ParseCmdline(c.in)
		if err != nil {
			t.Fatalf("%q: %v", c.in, err)
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: got %+v, want %+v", c.in, got, c.want)
		}
	}
}

func TestParseCmdlineRejectsBadSlot(t *testing.T) {
	if _, err := ParseCmdline("ros.slot=C"); err == nil {
		t.Fatal("ros.slot=C must be refused")
	}
}
