// Package blockdev finds block devices and reads the file system type and
// label from their superblocks, as blkid does, for the file systems the OS
// uses: ext4 (state, persistent), FAT (the ESP, NoCloud seeds) and ISO 9660
// (seeds on a CD-ROM, the live ISO).
package blockdev

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Device is a block device with a recognised file system.
type Device struct {
	Path  string // /dev/vda2
	Type  string // ext4, vfat, iso9660
	Label string
	// PartName is the GPT partition name, which may be longer than a file
	// system label can be (ext4 labels hold 16 bytes; RANCHER_PERSISTENT
	// is 18).
	PartName string
}

// ErrUnknown means the bytes hold no file system this package knows.
var ErrUnknown = errors.New("no known file system")

// Probe reads the file system type and label from r.
func Probe(r io.ReaderAt) (typ, label string, err error) {
	// ext2/3/4: superblock at 1024, magic at 56, volume name at 120.
	sb := make([]byte, 1024)
	if _, err := r.ReadAt(sb, 1024); err == nil {
		if binary.LittleEndian.Uint16(sb[56:]) == 0xEF53 {
			return "ext4", cstring(sb[120:136]), nil
		}
	}
	// ISO 9660: primary volume descriptor at 32768, "CD001" at 1, volume id at 40.
	pvd := make([]byte, 2048)
	if _, err := r.ReadAt(pvd, 32768); err == nil {
		if pvd[0] == 1 && string(pvd[1:6]) == "CD001" {
			return "iso9660", strings.TrimRight(string(pvd[40:72]), " \x00"), nil
		}
	}
	// FAT: boot sector signature 0x55AA, "FAT" in the file system type field.
	bs := make([]byte, 512)
	if _, err := r.ReadAt(bs, 0); err != nil {
		return "", "", fmt.Errorf("read boot sector: %w", err)
	}
	if bs[510] == 0x55 && bs[511] == 0xAA {
		switch {
		case bytes.HasPrefix(bs[82:90], []byte("FAT32")):
			return "vfat", fatLabel(bs[71:82]), nil
		case bytes.HasPrefix(bs[54:62], []byte("FAT")):
			return "vfat", fatLabel(bs[43:54]), nil
		}
	}
	return "", "", ErrUnknown
}

func cstring(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

func fatLabel(b []byte) string {
	l := strings.TrimRight(string(b), " \x00")
	if l == "NO NAME" {
		return ""
	}
	return l
}

// List returns every block device under sysBlock (normally /sys/class/block)
// whose file system is recognised, with its node under devDir (/dev).
// Devices that cannot be read (an empty CD-ROM drive) are left out.
func List(sysBlock, devDir string) ([]Device, error) {
	ents, err := os.ReadDir(sysBlock)
	if err != nil {
		return nil, fmt.Errorf("blockdev: %w", err)
	}
	var out []Device
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, "ram") || strings.HasPrefix(name, "zram") {
			continue
		}
		path := filepath.Join(devDir, name)
		typ, label, err := ProbeFile(path)
		if err != nil {
			continue
		}
		out = append(out, Device{Path: path, Type: typ, Label: label, PartName: partName(filepath.Join(sysBlock, name, "uevent"))})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// partName reads PARTNAME= from a block device's uevent file.
func partName(uevent string) string {
	b, err := os.ReadFile(uevent)
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "PARTNAME="); ok {
			return v
		}
	}
	return ""
}

// ProbeFile opens path and probes it.
func ProbeFile(path string) (typ, label string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", "", err
	}
	defer f.Close()
	return Probe(f)
}

// FindLabel returns the device whose file system label or GPT partition
// name is label. FAT labels are compared case-insensitively, as blkid does. It is an error when two devices carry the label, because
// mounting the wrong one would be worse than stopping.
func FindLabel(devs []Device, label string) (Device, error) {
	var found []Device
	for _, d := range devs {
		if d.Label == label || d.PartName == label || (d.Type != "ext4" && strings.EqualFold(d.Label, label)) {
			found = append(found, d)
		}
	}
	switch len(found) {
	case 0:
		return Device{}, fmt.Errorf("no block device has the label %s", label)
	case 1:
		return found[0], nil
	default:
		var paths []string
		for _, d := range found {
			paths = append(paths, d.Path)
		}
		return Device{}, fmt.Errorf("label %s is on %d devices (%s): remove the extra disk", label, len(found), strings.Join(paths, ", "))
	}
}

// WaitLabel looks for label until it appears or timeout passes: disks appear
// a little after the drivers load.
func WaitLabel(sysBlock, devDir, label string, timeout time.Duration) (Device, error) {
	deadline := time.Now().Add(timeout)
	for {
		devs, err := List(sysBlock, devDir)
		if err != nil {
			return Device{}, err
		}
		d, err := FindLabel(devs, label)
		if err == nil || time.Now().After(deadline) || strings.Contains(err.Error(), "devices (") {
			if err != nil {
				var seen []string
				for _, d := range devs {
					seen = append(seen, fmt.Sprintf("%s=%s:%q", d.Path, d.Type, d.Label))
				}
				return d, fmt.Errorf("%w after %s (seen: %s)", err, timeout, strings.Join(seen, " "))
			}
			return d, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
}
