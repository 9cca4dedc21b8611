package blockdev

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A disk image made for a small disk (the release image, the ISO's disk
// template) is written to a bigger one: its last partition, the persistent
// one, is grown to the end of the disk at boot, as cloud images do.

// growAlign is where a grown partition ends: on a MiB boundary.
const growAlign = 1 << 20

// gpt is a disk's GUID partition table as read from one of its copies.
type gpt struct {
	header  []byte // one sector, the header in its first HeaderSize bytes
	entries []byte // the whole entry array
	sector  int64
}

func (g *gpt) u32(off int) uint32      { return binary.LittleEndian.Uint32(g.header[off:]) }
func (g *gpt) u64(off int) uint64      { return binary.LittleEndian.Uint64(g.header[off:]) }
func (g *gpt) put64(off int, v uint64) { binary.LittleEndian.PutUint64(g.header[off:], v) }

// Header fields (UEFI spec, 5.3.2).
const (
	gptMyLBA       = 24
	gptAltLBA      = 32
	gptLastUsable  = 48
	gptEntriesLBA  = 72
	gptNumEntries  = 80
	gptEntrySize   = 84
	gptEntriesCRC  = 88
	gptHeaderCRC   = 16
	gptHeaderSize  = 12
	entryStartLBA  = 32
	entryEndLBA    = 40
	maxEntriesSize = 1 << 20
)

// readGPT reads and checks (signature, both CRCs) the GPT header at lba
// and its entries.
func readGPT(r io.ReaderAt, lba, sector int64) (*gpt, error) {
	g := &gpt{header: make([]byte, sector), sector: sector}
	if _, err := r.ReadAt(g.header, lba*sector); err != nil {
		return nil, fmt.Errorf("read GPT header at LBA %d: %w", lba, err)
	}
	if string(g.header[:8]) != "EFI PART" {
		return nil, fmt.Errorf("no GPT header at LBA %d", lba)
	}
	hs := g.u32(gptHeaderSize)
	if hs < 92 || int64(hs) > sector {
		return nil, fmt.Errorf("GPT header at LBA %d: size %d", lba, hs)
	}
	if got, want := g.headerCRC(), g.u32(gptHeaderCRC); got != want {
		return nil, fmt.Errorf("GPT header at LBA %d: CRC %08x, want %08x", lba, got, want)
	}
	if g.u64(gptMyLBA) != uint64(lba) {
		return nil, fmt.Errorf("GPT header at LBA %d says it is at LBA %d", lba, g.u64(gptMyLBA))
	}
	n, es := int64(g.u32(gptNumEntries)), int64(g.u32(gptEntrySize))
	if es < 128 || n*es > maxEntriesSize {
		return nil, fmt.Errorf("GPT at LBA %d: %d entries of %d bytes", lba, n, es)
	}
	g.entries = make([]byte, n*es)
	if _, err := r.ReadAt(g.entries, int64(g.u64(gptEntriesLBA))*sector); err != nil {
		return nil, fmt.Errorf("read GPT entries: %w", err)
	}
	if got, want := crc32.ChecksumIEEE(g.entries), g.u32(gptEntriesCRC); got != want {
		return nil, fmt.Errorf("GPT entries of the header at LBA %d: CRC %08x, want %08x", lba, got, want)
	}
	return g, nil
}

func (g *gpt) headerCRC() uint32 {
	h := bytes.Clone(g.header[:g.u32(gptHeaderSize)])
	binary.LittleEndian.PutUint32(h[gptHeaderCRC:], 0)
	return crc32.ChecksumIEEE(h)
}

// seal sets both CRCs after a change.
func (g *gpt) seal() {
	binary.LittleEndian.PutUint32(g.header[gptEntriesCRC:], crc32.ChecksumIEEE(g.entries))
	binary.LittleEndian.PutUint32(g.header[gptHeaderCRC:], g.headerCRC())
}

func (g *gpt) entry(i int) []byte {
	es := int(g.u32(gptEntrySize))
	return g.entries[i*es : (i+1)*es]
}

func (g *gpt) used(i int) bool { return !bytes.Equal(g.entry(i)[:16], make([]byte, 16)) }

// growGPT grows partition pno (1-based) of the disk in f, of size bytes
// with sector-byte sectors, to the end of the disk when it is the last
// partition on it and that gains at least minGain bytes. It returns the
// partition's new start and length in bytes, and false when there was
// nothing to do.
//
// The backup GPT is written first, at the disk's new end; then LBA 0 (the
// protective MBR) up to the changed entry's sector, the primary header
// among them, in one write. A primary left damaged by a power cut is
// rewritten from the backup the next time. A primary that is damaged while
// the backup is not is rewritten from the backup, grown or not.
func growGPT(f interface {
	io.ReaderAt
	io.WriterAt
	Sync() error
}, size, sector int64, pno int, minGain int64) (start, length int64, grown bool, err error) {
	last := size/sector - 1
	g, perr := readGPT(f, 1, sector)
	repair := false
	if perr != nil {
		// A cut during the primary's write: the backup at the end is whole.
		b, berr := readGPT(f, last, sector)
		if berr != nil {
			return 0, 0, false, fmt.Errorf("primary GPT: %w; backup GPT: %w", perr, berr)
		}
		g, repair = b, true
		g.put64(gptMyLBA, 1)
		g.put64(gptAltLBA, uint64(last))
		g.put64(gptEntriesLBA, 2)
	}
	n := int(g.u32(gptNumEntries))
	if pno < 1 || pno > n || !g.used(pno-1) {
		return 0, 0, false, fmt.Errorf("partition %d is not in the GPT", pno)
	}
	e := g.entry(pno - 1)
	pStart, pEnd := int64(binary.LittleEndian.Uint64(e[entryStartLBA:])), int64(binary.LittleEndian.Uint64(e[entryEndLBA:]))
	for i := 0; i < n; i++ {
		if i != pno-1 && g.used(i) && int64(binary.LittleEndian.Uint64(g.entry(i)[entryEndLBA:])) > pEnd {
			return pStart * sector, (pEnd - pStart + 1) * sector, false, nil // not the last: leave it
		}
	}
	entSectors := (int64(len(g.entries)) + sector - 1) / sector
	lastUsable := last - entSectors - 1
	align := growAlign / sector
	newEnd := (lastUsable+1)/align*align - 1
	if newEnd < pEnd+minGain/sector {
		newEnd = pEnd // nothing worth growing
	}
	if newEnd == pEnd && !repair && g.u64(gptAltLBA) == uint64(last) {
		return pStart * sector, (pEnd - pStart + 1) * sector, false, nil
	}
	binary.LittleEndian.PutUint64(e[entryEndLBA:], uint64(newEnd))
	g.put64(gptAltLBA, uint64(last))
	g.put64(gptLastUsable, uint64(lastUsable))
	g.seal()

	// The backup: entries, then its header in the last sector.
	b := &gpt{header: bytes.Clone(g.header), entries: g.entries, sector: sector}
	b.put64(gptMyLBA, uint64(last))
	b.put64(gptAltLBA, 1)
	b.put64(gptEntriesLBA, uint64(last-entSectors))
	b.seal()
	if _, err := f.WriteAt(b.entries, (last-entSectors)*sector); err != nil {
		return 0, 0, false, fmt.Errorf("write the backup GPT entries: %w", err)
	}
	if _, err := f.WriteAt(b.header, last*sector); err != nil {
		return 0, 0, false, fmt.Errorf("write the backup GPT header: %w", err)
	}
	if err := f.Sync(); err != nil {
		return 0, 0, false, fmt.Errorf("sync the backup GPT: %w", err)
	}

	// The primary: LBA 0 up to the changed entry's sector, in one write.
	entLBA := int64(g.u64(gptEntriesLBA))
	es := int64(g.u32(gptEntrySize))
	upto := entLBA*sector + int64(pno)*es // end of the changed entry
	if repair {
		upto = entLBA*sector + int64(len(g.entries))
	}
	head := make([]byte, (upto+sector-1)/sector*sector)
	if _, err := f.ReadAt(head, 0); err != nil {
		return 0, 0, false, fmt.Errorf("read the disk's head: %w", err)
	}
	protectiveMBR(head[:sector], last)
	copy(head[sector:], g.header)
	copy(head[entLBA*sector:], g.entries[:min(int64(len(g.entries)), int64(len(head))-entLBA*sector)])
	if _, err := f.WriteAt(head, 0); err != nil {
		return 0, 0, false, fmt.Errorf("write the primary GPT: %w", err)
	}
	if err := f.Sync(); err != nil {
		return 0, 0, false, fmt.Errorf("sync the primary GPT: %w", err)
	}
	return pStart * sector, (newEnd - pStart + 1) * sector, newEnd != pEnd, nil
}

// protectiveMBR sets the size of a protective MBR's 0xEE partition to the
// disk's (as far as 32 bits go).
func protectiveMBR(mbr []byte, last int64) {
	if len(mbr) < 512 || mbr[510] != 0x55 || mbr[511] != 0xAA || mbr[446+4] != 0xEE {
		return
	}
	binary.LittleEndian.PutUint32(mbr[446+12:], uint32(min(last, 0xFFFFFFFF)))
}

// GrowResult says what GrowPersistent did.
type GrowResult struct {
	Partition string // /dev/vda3
	FromBytes int64  // the file system's size before
	ToBytes   int64  // and after
	GrewTable bool   // the partition table was changed
	GrewFS    bool   // the file system was resized
}

// GrowPersistent grows the ext4 partition part (mounted at dir) to the end
// of its disk: the GPT (when the partition is the last on the disk and the
// disk has at least minGain bytes more), the kernel's idea of the
// partition (BLKPG), then the file system, online (EXT4_IOC_RESIZE_FS). A
// file system smaller than its partition (a cut between the two steps at
// an earlier boot) is grown too.
func GrowPersistent(part, dir string, minGain int64) (GrowResult, error) {
	res := GrowResult{Partition: part}
	name := filepath.Base(part)
	sys, err := filepath.EvalSymlinks(filepath.Join("/sys/class/block", name))
	if err != nil {
		return res, err
	}
	pno, err := readInt(filepath.Join(sys, "partition"))
	if err != nil {
		return res, fmt.Errorf("%s is not a partition: %w", part, err)
	}
	disk := filepath.Join(filepath.Dir(part), filepath.Base(filepath.Dir(sys)))
	f, err := os.OpenFile(disk, os.O_RDWR, 0)
	if err != nil {
		return res, err
	}
	defer f.Close()
	sector, err := unix.IoctlGetInt(int(f.Fd()), unix.BLKSSZGET)
	if err != nil {
		return res, fmt.Errorf("%s: sector size: %w", disk, err)
	}
	var size uint64
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.BLKGETSIZE64, uintptr(unsafe.Pointer(&size))); errno != 0 {
		return res, fmt.Errorf("%s: size: %w", disk, errno)
	}
	start, length, grew, err := growGPT(f, int64(size), int64(sector), int(pno), minGain)
	if err != nil {
		return res, fmt.Errorf("%s: %w", disk, err)
	}
	res.GrewTable = grew
	if grew {
		if err := resizePartition(f, int(pno), start, length); err != nil {
			return res, fmt.Errorf("%s: tell the kernel partition %d's new size: %w", disk, pno, err)
		}
	}
	blocks, bsize, err := ext4Blocks(part)
	if err != nil {
		return res, err
	}
	res.FromBytes, res.ToBytes = blocks*bsize, blocks*bsize
	want := length / bsize
	if want-blocks < minGain/bsize {
		return res, nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return res, err
	}
	defer d.Close()
	const ext4IocResizeFS = 0x40086610 // _IOW('f', 16, __u64)
	n := uint64(want)
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, d.Fd(), ext4IocResizeFS, uintptr(unsafe.Pointer(&n))); errno != 0 {
		return res, fmt.Errorf("%s: resize the file system to %d blocks: %w", part, want, errno)
	}
	res.GrewFS = true
	if blocks, bsize, err = ext4Blocks(part); err == nil {
		res.ToBytes = blocks * bsize
	}
	return res, nil
}

// resizePartition tells the kernel a partition's new extent (bytes).
func resizePartition(disk *os.File, pno int, start, length int64) error {
	p := unix.BlkpgPartition{Start: start, Length: length, Pno: int32(pno)}
	arg := unix.BlkpgIoctlArg{Op: unix.BLKPG_RESIZE_PARTITION, Datalen: int32(unsafe.Sizeof(p)), Data: (*byte)(unsafe.Pointer(&p))}
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, disk.Fd(), unix.BLKPG, uintptr(unsafe.Pointer(&arg))); errno != 0 {
		return errno
	}
	return nil
}

// ext4Blocks reads an ext4 file system's block count and block size from
// its superblock.
func ext4Blocks(dev string) (blocks, bsize int64, err error) {
	f, err := os.Open(dev)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sb := make([]byte, 1024)
	if _, err := f.ReadAt(sb, 1024); err != nil {
		return 0, 0, fmt.Errorf("%s: read superblock: %w", dev, err)
	}
	if binary.LittleEndian.Uint16(sb[56:]) != 0xEF53 {
		return 0, 0, fmt.Errorf("%s: not ext4", dev)
	}
	blocks = int64(binary.LittleEndian.Uint32(sb[4:]))
	const incompat64bit = 0x80
	if binary.LittleEndian.Uint32(sb[0x60:])&incompat64bit != 0 {
		blocks |= int64(binary.LittleEndian.Uint32(sb[0x150:])) << 32
	}
	bsize = 1024 << binary.LittleEndian.Uint32(sb[24:])
	return blocks, bsize, nil
}

func readInt(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}
