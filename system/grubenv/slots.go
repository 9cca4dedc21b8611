package grubenv

import (
	"fmt"
	"strconv"
)

// The A/B state kept in the environment block. GRUB's script (build/grub.cfg)
// and this file implement the same rules; keep them in step.
//
//	ros_active   the slot last marked good: booted when nothing else is tried
//	ros_next     a slot to try before the active one (after an upgrade), or ""
//	ros_A_tries  boots slot A may still be tried before it is given up on
//	ros_B_tries  the same for slot B
//	ros_failed   the last slot whose tries ran out, or ""
//
// Every boot, GRUB picks the first of next, active, the other slot that still
// has tries, decrements its tries and boots it. A slot whose boot is marked good
// gets its tries back. When no slot has tries left GRUB boots the active slot
// anyway: a machine that never boots is worse than one that boots a bad slot.
const (
	KeyActive = "ros_active"
	KeyNext   = "ros_next"
	KeyFailed = "ros_failed"
	// MaxTries is the largest try count the GRUB script counts down from.
	MaxTries = 3
)

// Path is where the block lives on the ESP; GRUB and the OS both use it.
const Path = "EFI/ros/grubenv"

// Slots are the names of the two slots.
var Slots = []string{"A", "B"}

// GoodKey is "1" once a boot of slot was marked good, "0" while it holds an
// OS that has not booted well (just written); GRUB keeps it as it is.
func GoodKey(slot string) string { return "ros_" + slot + "_good" }

// TriesKey is the variable holding slot's tries.
func TriesKey(slot string) string { return "ros_" + slot + "_tries" }

// Other is the slot that is not slot.
func Other(slot string) string {
	if slot == "A" {
		return "B"
	}
	return "A"
}

// ValidSlot reports whether s names a slot.
func ValidSlot(s string) bool { return s == "A" || s == "B" }

// Tries returns the tries left for slot (0 when unset or unreadable).
func (e Env) Tries(slot string) int {
	n, err := strconv.Atoi(e[TriesKey(slot)])
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// NewSlots is the state of a freshly installed disk: slot A active, with the
// full count of tries until its first boot is marked good.
func NewSlots(tries int) Env {
	return Env{KeyActive: "A", KeyNext: "", KeyFailed: "", TriesKey("A"): strconv.Itoa(tries), TriesKey("B"): "0"}
}

// Choose is what GRUB does at boot: it returns the slot to boot and the
// environment after the boot loader saved it. present says which slot images
// exist. The second result is false when no slot had tries left and the
// active slot is booted as a last resort.
func Choose(e Env, present func(slot string) bool) (string, Env, bool) {
	out := Env{}
	for k, v := range e {
		out[k] = v
	}
	next, active := e[KeyNext], e[KeyActive]
	if !ValidSlot(active) {
		active = "A"
	}
	if ValidSlot(next) && (out.Tries(next) == 0 || !present(next)) {
		// The tried slot is spent (or gone): give it up and remember it failed.
		out[KeyFailed] = next
		out[KeyNext] = ""
		next = ""
	}
	for _, s := range []string{next, active, Other(active)} {
		if !ValidSlot(s) || !present(s) {
			continue
		}
		if t := out.Tries(s); t > 0 {
			out[TriesKey(s)] = strconv.Itoa(t - 1)
			return s, out, true
		}
	}
	return active, out, false
}

// MarkGood records that slot booted well: its tries are reset, it becomes the
// active slot, and it is no longer "next".
func (e Env) MarkGood(slot string, tries int) error {
	if !ValidSlot(slot) {
		return fmt.Errorf("grubenv: no slot %q (want A or B)", slot)
	}
	if tries < 1 || tries > MaxTries {
		return fmt.Errorf("grubenv: tries %d out of range 1..%d", tries, MaxTries)
	}
	e[KeyActive] = slot
	e[TriesKey(slot)] = strconv.Itoa(tries)
	e[GoodKey(slot)] = "1"
	if e[KeyNext] == slot {
		e[KeyNext] = ""
	}
	if e[KeyFailed] == slot {
		e[KeyFailed] = ""
	}
	return nil
}

// TryNext makes slot the one GRUB tries first, tries times.
func (e Env) TryNext(slot string, tries int) error {
	if !ValidSlot(slot) {
		return fmt.Errorf("grubenv: no slot %q (want A or B)", slot)
	}
	if tries < 1 || tries > MaxTries {
		return fmt.Errorf("grubenv: tries %d out of range 1..%d", tries, MaxTries)
	}
	e[KeyNext] = slot
	e[TriesKey(slot)] = strconv.Itoa(tries)
	return nil
}
