package slots

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/rosos/ros/client"
	"github.com/rosos/ros/config"
	"github.com/rosos/ros/internal/paths"
	"github.com/rosos/ros/system/blockdev"
	"github.com/rosos/ros/system/mount"
)

// partitioned reports what makes a disk look in use: partitions, or a
// file system on the whole device.
func partitioned(dev string) string {
	name := filepath.Base(dev)
	ents, _ := os.ReadDir(filepath.Join("/sys/class/block", name))
	var parts []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), name) {
			parts = append(parts, e.Name())
		}
	}
	if len(parts) > 0 {
		return fmt.Sprintf("it has partitions (%s)", strings.Join(parts, ", "))
	}
	if typ, label, err := blockdev.ProbeFile(dev); err == nil {
		return fmt.Sprintf("it holds a %s file system (label %q)", typ, label)
	}
	return ""
}

// Install writes the OS onto a disk: the disk template (slot A is the
// running OS's image), then the cloud-config into the new persistent
// partition. Progress lines go to out.
func Install(ctx context.Context, req client.InstallRequest, out io.Writer) error {
	osMu.Lock()
	defer osMu.Unlock()
	say := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	if req.Device == "" || !strings.HasPrefix(req.Device, "/dev/") {
		return fmt.Errorf("--device: want a whole disk such as /dev/vda, got %q", req.Device)
	}
	if len(req.CloudConfig) > 0 {
		if _, err := config.ParseDoc("--cloud-config", req.CloudConfig); err != nil {
			return err
		}
	}
	if _, err := os.Stat(paths.DiskTemplate); err != nil {
		return fmt.Errorf("no disk template at %s: ros install runs from the live ISO (%w)", paths.DiskTemplate, err)
	}
	if why := partitioned(req.Device); why != "" && !req.Force {
		return fmt.Errorf("%s is not blank: %s; --force overwrites it (everything on it is lost)", req.Device, why)
	}
	dev, err := os.OpenFile(req.Device, os.O_RDWR|unix.O_EXCL, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w (mounted or in use?)", req.Device, err)
	}
	defer dev.Close()
	size, err := dev.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	src, err := os.Open(paths.DiskTemplate)
	if err != nil {
		return err
	}
	defer src.Close()
	zr, err := gzip.NewReader(src)
	if err != nil {
		return fmt.Errorf("disk template: %w", err)
	}
	say("writing the OS to %s (%d GiB)", req.Device, size>>30)
	start := time.Now()
	n, err := writeSparse(dev, zr, size, func(done int64) { say("  %d MiB", done>>20) })
	if err != nil {
		return fmt.Errorf("write %s: %w", req.Device, err)
	}
	if err := dev.Sync(); err != nil {
		return err
	}
	say("wrote %d MiB in %s", n>>20, time.Since(start).Round(time.Second))
	// The kernel reads the new partition table.
	if err := unix.IoctlSetInt(int(dev.Fd()), unix.BLKRRPART, 0); err != nil {
		return fmt.Errorf("re-read the partition table of %s: %w", req.Device, err)
	}
	// Let go of the disk (opened exclusively): its partition is mounted next.
	if err := dev.Close(); err != nil {
		return err
	}
	if len(req.CloudConfig) > 0 {
		if err := storeCloudConfig(req.Device, req.CloudConfig); err != nil {
			return err
		}
		say("cloud-config stored in %s", paths.UserConfig)
	}
	say("installed: remove the ISO and boot from %s", req.Device)
	return nil
}

// mountNewPersistent mounts the RANCHER_PERSISTENT partition of the disk
// just written at dir. The partitions come and go for a moment after the
// write: the kernel re-reads the table, and udev re-reads it again when
// the disk, opened for writing, is closed (its watch rule). So it looks
// for the partition and mounts it until that works or wait is over.
func mountNewPersistent(device, dir string, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	var err error
	for {
		part := ""
		devs, lerr := blockdev.List("/sys/class/block", "/dev")
		for _, d := range devs {
			if d.PartName == "RANCHER_PERSISTENT" && strings.HasPrefix(d.Path, device) {
				part = d.Path
			}
		}
		switch {
		case lerr != nil:
			err = lerr
		case part == "":
			err = fmt.Errorf("the new persistent partition did not appear on %s", device)
		default:
			if err = mount.Mount(part, dir, "ext4", unix.MS_NODEV|unix.MS_NOSUID, ""); err == nil {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// writeSparse copies r onto dev. Runs of zeros are zeroed with BLKZEROOUT
// (cheap on disks that support it) rather than written. It returns the
// bytes of the template.
func writeSparse(dev *os.File, r io.Reader, size int64, progress func(int64)) (int64, error) {
	const chunk = 1 << 20
	buf := make([]byte, chunk)
	zero := make([]byte, chunk)
	var off, last int64
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			if off+int64(n) > size {
				return off, fmt.Errorf("the disk (%d MiB) is smaller than the OS needs (more than %d MiB)", size>>20, (off+int64(n))>>20)
			}
			if bytes.Equal(buf[:n], zero[:n]) {
				rng := [2]uint64{uint64(off), uint64(n)}
				if _, _, e := unix.Syscall(unix.SYS_IOCTL, dev.Fd(), unix.BLKZEROOUT, uintptr(unsafe.Pointer(&rng[0]))); e != 0 {
					if _, werr := dev.WriteAt(buf[:n], off); werr != nil {
						return off, werr
					}
				}
			} else if _, werr := dev.WriteAt(buf[:n], off); werr != nil {
				return off, werr
			}
			off += int64(n)
			if off-last >= 512<<20 {
				last = off
				progress(off)
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return off, nil
		}
		if err != nil {
			return off, err
		}
	}
}

// storeCloudConfig writes the cloud-config as the user's config on the new
// disk's persistent partition.
func storeCloudConfig(device string, doc []byte) error {
	dir := "/run/ros/install-persistent"
	if err := mountNewPersistent(device, dir, 15*time.Second); err != nil {
		return err
	}
	defer func() { _ = unix.Unmount(dir, 0) }()
	p := filepath.Join(dir, paths.UserConfig)
	if err := config.WriteAtomic(p, doc, 0o600); err != nil {
		return err
	}
	return syncFS(dir)
}
