package grubenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestEncodeParseRoundTrip(t *testing.T) {
	env := Env{"ros_active": "A", "ros_next": "", "odd": "a\\b\nc"}
	b, err := env.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != Size {
		t.Fatalf("block is %d bytes, want %d", len(b), Size)
	}
	got, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range env {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}

func TestParseRejectsOtherFiles(t *testing.T) {
	if _, err := Parse([]byte("hello")); err == nil {
		t.Fatal("want an error for a file that is not an environment block")
	}
}

func TestEncodeTooBig(t *testing.T) {
	if _, err := (Env{"x": strings.Repeat("y", 2000)}).Encode(); err == nil {
		t.Fatal("want an error when the variables do not fit")
	}
}

// GRUB's own tool must read what we write, and we must read what it writes.
func TestCompatibleWithGrubEditenv(t *testing.T) {
	editenv, err := exec.LookPath("grub-editenv")
	if err != nil {
		t.Fatal("grub-editenv is not installed: run `make deps` (package grub-common)")
	}
	path := filepath.Join(t.TempDir(), "grubenv")
	if out, err := exec.Command(editenv, path, "create").CombinedOutput(); err != nil {
		t.Fatalf("grub-editenv create: %v: %s", err, out)
	}
	if out, err := exec.Command(editenv, path, "set", "ros_active=B", "ros_B_tries=2").CombinedOutput(); err != nil {
		t.Fatalf("grub-editenv set: %v: %s", err, out)
	}
	env, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if env["ros_active"] != "B" || env.Tries("B") != 2 {
		t.Fatalf("read %v", env)
	}
	env["ros_next"] = "A"
	if err := Write(path, env); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(editenv, path, "list").CombinedOutput()
	if err != nil {
		t.Fatalf("grub-editenv list: %v: %s", err, out)
	}
	if !strings.Contains(string(out), "ros_next=A") || !strings.Contains(string(out), "ros_active=B") {
		t.Fatalf("grub-editenv list = %q", out)
	}
	if fi, _ := os.Stat(path); fi.Size() != Size {
		t.Fatalf("size %d after write, want %d", fi.Size(), Size)
	}
}

func both(string) bool    { return true }
func onlyA(s string) bool { return s == "A" }

func TestChooseFreshDiskCountsDown(t *testing.T) {
	env := NewSlots(3)
	var slot string
	var ok bool
	for i := 2; i >= 0; i-- {
		slot, env, ok = Choose(env, onlyA)
		if slot != "A" || !ok || env.Tries("A") != i {
			t.Fatalf("boot %d: slot %s ok %v tries %d", 3-i, slot, ok, env.Tries("A"))
		}
	}
	// Out of tries, nothing else to boot: the active slot is booted anyway.
	slot, _, ok = Choose(env, onlyA)
	if slot != "A" || ok {
		t.Fatalf("last resort: slot %s ok %v, want A and false", slot, ok)
	}
}

func TestChooseTriesNextThenFallsBack(t *testing.T) {
	env := NewSlots(3)
	if err := env.MarkGood("A", 3); err != nil {
		t.Fatal(err)
	}
	if err := env.TryNext("B", 2); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		var slot string
		slot, env, _ = Choose(env, both)
		if slot != "B" {
			t.Fatalf("try %d booted %s, want B", i+1, slot)
		}
	}
	slot, env, ok := Choose(env, both)
	if slot != "A" || !ok {
		t.Fatalf("after B's tries: booted %s, want A", slot)
	}
	if env[KeyFailed] != "B" || env[KeyNext] != "" {
		t.Fatalf("failed=%q next=%q, want B and empty", env[KeyFailed], env[KeyNext])
	}
}

func TestMarkGoodMakesSlotActive(t *testing.T) {
	env := NewSlots(3)
	_ = env.MarkGood("A", 3)
	_ = env.TryNext("B", 3)
	slot, env, _ := Choose(env, both)
	if slot != "B" {
		t.Fatalf("booted %s", slot)
	}
	if err := env.MarkGood("B", 3); err != nil {
		t.Fatal(err)
	}
	if env[KeyActive] != "B" || env[KeyNext] != "" || env.Tries("B") != 3 || env[GoodKey("B")] != "1" {
		t.Fatalf("after MarkGood(B): %v", env)
	}
	if err := env.MarkGood("C", 3); err == nil {
		t.Fatal("MarkGood(C) must fail")
	}
	if err := env.TryNext("A", 9); err == nil {
		t.Fatal("TryNext with 9 tries must fail")
	}
}

func TestChooseSkipsMissingNext(t *testing.T) {
	env := NewSlots(3)
	env[KeyNext] = "B"
	env[TriesKey("B")] = "3"
	slot, env, _ := Choose(env, onlyA)
	if slot != "A" || env[KeyFailed] != "B" || env[KeyNext] != "" {
		t.Fatalf("booted %s (failed %q next %q) although B's image is missing", slot, env[KeyFailed], env[KeyNext])
	}
}
