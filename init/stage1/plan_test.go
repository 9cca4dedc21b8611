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
		{"console=ttyS0", Plan{Slot: "A", State: LabelState, Persistent: LabelPersistent}},
		{"ros.slot=B quiet", Plan{Slot: "B", State: LabelState, Persistent: LabelPersistent}},
		{"ros.slot=A ros.persistent=none rd.modules=e1000,,ahci rd.break",
			Plan{Slot: "A", State: LabelState, Modules: []string{"e1000", "ahci"}, Break: true}},
		{"ros.persistent=MYDATA", Plan{Slot: "A", State: LabelState, Persistent: "MYDATA"}},
		{"ros.state=ROSOS_LIVE ros.persistent=none", Plan{Slot: "A", State: "ROSOS_LIVE"}},
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
