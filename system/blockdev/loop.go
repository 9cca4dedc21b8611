package blockdev

import (
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// AttachLoop attaches file to a free loop device, read-only when readOnly,
// and returns the device's path and its open file. The device goes away by
// itself when its last user lets go of it, so the caller keeps the file open
// until the device is mounted, then closes it.
func AttachLoop(file string, readOnly bool) (string, *os.File, error) {
	flags := os.O_RDWR
	if readOnly {
		flags = os.O_RDONLY
	}
	backing, err := os.OpenFile(file, flags, 0)
	if err != nil {
		return "", nil, fmt.Errorf("loop: %w", err)
	}
	defer backing.Close()
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR, 0)
	if err != nil {
		return "", nil, fmt.Errorf("loop: %w (is the loop module loaded?)", err)
	}
	defer ctl.Close()
	for attempt := 0; attempt < 10; attempt++ {
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return "", nil, fmt.Errorf("loop: get a free device: %w", err)
		}
		path := fmt.Sprintf("/dev/loop%d", n)
		dev, err := openWait(path, flags)
		if err != nil {
			return "", nil, fmt.Errorf("loop: %w", err)
		}
		cfg := unix.LoopConfig{Fd: uint32(backing.Fd())}
		cfg.Info.Flags = unix.LO_FLAGS_AUTOCLEAR
		if readOnly {
			cfg.Info.Flags |= unix.LO_FLAGS_READ_ONLY
		}
		copy(cfg.Info.File_name[:], file)
		err = unix.IoctlLoopConfigure(int(dev.Fd()), &cfg)
		if errors.Is(err, unix.EBUSY) {
			dev.Close()
			continue // taken between GET_FREE and CONFIGURE: try another
		}
		if err != nil {
			dev.Close()
			return "", nil, fmt.Errorf("loop: attach %s to %s: %w", file, path, err)
		}
		return path, dev, nil
	}
	return "", nil, fmt.Errorf("loop: no free loop device for %s", file)
}

// openWait opens a device node that devtmpfs may not have made yet.
func openWait(path string, flags int) (*os.File, error) {
	var err error
	for i := 0; i < 50; i++ {
		var f *os.File
		if f, err = os.OpenFile(path, flags, 0); err == nil {
			return f, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil, err
}
