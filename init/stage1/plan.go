// Package stage1 is the initramfs's /init: it finds the disks, mounts the
// slot GRUB chose as the read-only root, prepares the writable parts and
// switches to the real root, where PID 1 (package pid1) takes over.
package stage1

import (
	"fmt"
	"strings"

	"github.com/rosos/ros/system/grubenv"
)

// Labels of the partitions, as RancherOS v1 named them.
const (
	LabelEFI        = "RANCHER_EFI"
	LabelState      = "RANCHER_STATE"
	LabelPersistent = "RANCHER_PERSISTENT"
)

// Plan is what stage 1 decided from the kernel command line.
type Plan struct {
	Slot string // A or B: the slot image to mount
	// State is the label of the file system holding the slots:
	// RANCHER_STATE on an installed disk, the ISO's label on a live boot
	// (ros.state=ROSOS_LIVE).
	State string
	// Persistent is the label of the persistent partition; "" keeps the
	// writable state on tmpfs (a live boot, or ros.persistent=none).
	Persistent string
	Modules    []string // extra modules from rd.modules=a,b
	Break      bool     // rd.break: stop before switch_root (debugging)
}

// ParseCmdline decides the plan from /proc/cmdline.
func ParseCmdline(cmdline string) (Plan, error) {
	p := Plan{Slot: "A", State: LabelState, Persistent: LabelPersistent}
	for _, f := range strings.Fields(cmdline) {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "ros.slot":
			if !grubenv.ValidSlot(v) {
				return p, fmt.Errorf("kernel command line: ros.slot=%q: want A or B", v)
			}
			p.Slot = v
		case "ros.state":
			if v == "" {
				return p, fmt.Errorf("kernel command line: ros.state= needs a label")
			}
			p.State = v
		case "ros.persistent":
			if v == "none" || v == "" {
				p.Persistent = ""
			} else {
				p.Persistent = v
			}
		case "rd.modules":
			for _, m := range strings.Split(v, ",") {
				if m != "" {
					p.Modules = append(p.Modules, m)
				}
			}
		case "rd.break":
			p.Break = true
		}
	}
	return p, nil
}

// Persistent directories: each is bound from the persistent partition onto
// the same path in the root, so that it survives reboots and upgrades.
var PersistentDirs = []string{
	"/var/lib/rancher",
	"/var/lib/user-docker",
	"/var/log",
	"/home",
	"/opt",
}
