package blockdev

import (
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

// disk makes a GPT disk image of mb MiB with sgdisk (make deps installs
// gdisk): partitions of 8, 16 and 8 MiB, then grows the file to grownMB.
func disk(t *testing.T, mb, grownMB int64) *os.File {
	t.Helper()
	if _, err := exec.LookPath("sgdisk"); err != nil {
		t.Fatal("sgdisk is needed (make deps installs gdisk)")
	}
	path := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, mb<<20); err != nil {
		t.Fatal(err)
	}
	sgdisk(t, path, "-o", "-n", "1:2048:+8M", "-t", "1:ef00", "-n", "2:0:+16M", "-n", "3:0:+8M", "-c", "3:RANCHER_PERSISTENT")
	if err := os.Truncate(path, grownMB<<20); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func sgdisk(t *testing.T, path string, args ...string) string {
	t.Helper()
	out, err := exec.Command("sgdisk", append(args, path)...).CombinedOutput()
	if err != nil {
		t.Fatalf("sgdisk %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// lastSector is what sgdisk says partition n ends at.
func lastSector(t *testing.T, path string, n int) int64 {
	t.Helper()
	m := regexp.MustCompile(`Last sector: (\d+)`).FindStringSubmatch(sgdisk(t, path, "-i", strconv.Itoa(n)))
	if m == nil {
		t.Fatalf("sgdisk -i %d: no last sector", n)
	}
	v, _ := strconv.ParseInt(m[1], 10, 64)
	return v
}

// verify has sgdisk check the whole table (both copies, CRCs, overlaps).
func verify(t *testing.T, path string) {
	t.Helper()
	if out := sgdisk(t, path, "-v"); !regexp.MustCompile(`No problems found`).MatchString(out) {
		t.Errorf("sgdisk -v:\n%s", out)
	}
}

func TestGrowGPT(t *testing.T) {
	f := disk(t, 64, 256)
	start, length, grew, err := growGPT(f, 256<<20, 512, 3, 1<<20)
	if err != nil || !grew {
		t.Fatalf("grow: %v, grew %v", err, grew)
	}
	// Partition 3 starts after 1 MiB + 8 + 16 MiB and now ends on the last
	// MiB boundary before the backup GPT.
	if start != 25<<20 || start+length != 255<<20 {
		t.Errorf("grown to %d+%d, want %d+%d", start, length, 25<<20, (255-25)<<20)
	}
	verify(t, f.Name())
	if got := lastSector(t, f.Name(), 3); got != 255*2048-1 {
		t.Errorf("sgdisk: partition 3 ends at %d, want %d", got, 255*2048-1)
	}
	if got := lastSector(t, f.Name(), 2); got != 25*2048-1 {
		t.Errorf("partition 2 changed: ends at %d", got)
	}
	mbr := make([]byte, 512)
	f.ReadAt(mbr, 0)
	if got := binary.LittleEndian.Uint32(mbr[446+12:]); got != 256*2048-1 {
		t.Errorf("protective MBR size %d, want %d", got, 256*2048-1)
	}
	// Again: nothing to do.
	if _, _, grew, err := growGPT(f, 256<<20, 512, 3, 1<<20); err != nil || grew {
		t.Errorf("second grow: %v, grew %v", err, grew)
	}
}

func TestGrowGPTNotWorthIt(t *testing.T) {
	f := disk(t, 64, 64)
	if _, _, grew, err := growGPT(f, 64<<20, 512, 3, 64<<20); err != nil || grew {
		t.Errorf("grow of a full disk: %v, grew %v", err, grew)
	}
	verify(t, f.Name())
}

func TestGrowGPTOnlyTheLastPartition(t *testing.T) {
	f := disk(t, 64, 256)
	if _, _, grew, err := growGPT(f, 256<<20, 512, 2, 1<<20); err != nil || grew {
		t.Errorf("grow of partition 2: %v, grew %v", err, grew)
	}
	if _, _, _, err := growGPT(f, 256<<20, 512, 7, 1<<20); err == nil {
		t.Error("grow of a partition that is not there: no error")
	}
}

// A cut while the primary was written leaves a damaged primary and a whole
// backup at the end: the next grow rewrites the primary from it.
func TestGrowGPTRepairsThePrimary(t *testing.T) {
	f := disk(t, 64, 256)
	if _, _, _, err := growGPT(f, 256<<20, 512, 3, 1<<20); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{0xff, 0xff}, 512+gptHeaderCRC); err != nil { // a torn header
		t.Fatal(err)
	}
	if _, _, _, err := growGPT(f, 256<<20, 512, 3, 1<<20); err != nil {
		t.Fatalf("repair: %v", err)
	}
	verify(t, f.Name())
	if got := lastSector(t, f.Name(), 3); got != 255*2048-1 {
		t.Errorf("after the repair partition 3 ends at %d", got)
	}
}

func TestGrowGPTRefusesNoGPT(t *testing.T) {
	path := filepath.Join(t.TempDir(), "blank")
	os.WriteFile(path, make([]byte, 1<<20), 0o644)
	f, _ := os.OpenFile(path, os.O_RDWR, 0)
	defer f.Close()
	if _, _, _, err := growGPT(f, 1<<20, 512, 1, 0); err == nil {
		t.Error("a disk without a GPT: no error")
	}
}
