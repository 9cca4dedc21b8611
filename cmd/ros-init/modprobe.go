package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/rosos/ros/system/kmod"
)

// modprobe is the node's /sbin/modprobe: the kernel calls it to load a
// module on demand (an alias such as "net-pf-10" or "fs-overlay"), and so
// do programs in the host's namespaces. It knows -q (quiet), -a (every
// argument is a module), -b and -- ; removing modules is not supported.
func modprobe(args []string) int {
	quiet, all := false, false
	var names []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			names = append(names, args[i+1:]...)
			i = len(args)
		case a == "-q" || a == "--quiet":
			quiet = true
		case a == "-a" || a == "--all":
			all = true
		case a == "-b" || a == "--use-blacklist" || a == "-s" || a == "--syslog" || a == "-v":
		case a == "-r" || a == "--remove":
			fmt.Fprintln(os.Stderr, "modprobe: removing modules is not supported on rosos")
			return 1
		case strings.HasPrefix(a, "-"):
			fmt.Fprintf(os.Stderr, "modprobe: option %s is not supported\n", a)
			return 1
		default:
			names = append(names, a)
		}
	}
	if len(names) == 0 {
		fmt.Fprintln(os.Stderr, "usage: modprobe [-q] [-a] MODULE...")
		return 1
	}
	if !all {
		names = names[:1] // the rest are module parameters, which are not supported
	}
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		fmt.Fprintln(os.Stderr, "modprobe:", err)
		return 1
	}
	idx, err := kmod.Open(filepath.Join("/lib/modules", unix.ByteSliceToString(u.Release[:])))
	if err != nil {
		fmt.Fprintln(os.Stderr, "modprobe:", err)
		return 1
	}
	rc := 0
	for _, n := range names {
		mods := idx.Lookup(n)
		if len(mods) == 0 {
			if !quiet {
				fmt.Fprintf(os.Stderr, "modprobe: module %s not found\n", n)
			}
			rc = 1
			continue
		}
		if _, err := idx.Load(mods...); err != nil {
			if !quiet {
				fmt.Fprintln(os.Stderr, "modprobe:", err)
			}
			rc = 1
		}
	}
	return rc
}
