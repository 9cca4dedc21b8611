package host

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// Log rotation: the shim appends a service's output to its log file, so
// the file is rotated by copy and truncate: NAME.log is copied to
// NAME.log.1 (older copies move up to NAME.log.KEEP, the oldest dropped)
// and then cut to zero. Lines written between the copy and the cut are
// lost; that window is a few milliseconds once per MaxLogSize of output.
const (
	MaxLogSize = 10 << 20
	KeepLogs   = 3
)

// RotateLogs rotates every *.log in dir larger than max.
func RotateLogs(dir string, max int64, keep int) error {
	paths, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		return err
	}
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil || fi.Size() <= max {
			continue
		}
		if err := rotate(p, keep); err != nil {
			return fmt.Errorf("rotate %s: %w", p, err)
		}
	}
	return nil
}

func rotate(p string, keep int) error {
	for i := keep - 1; i >= 1; i-- {
		old := fmt.Sprintf("%s.%d", p, i)
		if _, err := os.Stat(old); err == nil {
			if err := os.Rename(old, fmt.Sprintf("%s.%d", p, i+1)); err != nil {
				return err
			}
		}
	}
	in, err := os.Open(p)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(p+".1", os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Truncate(p, 0)
}

// RotateLoop rotates the logs every interval until ctx ends.
func (h *Host) RotateLoop(ctx context.Context, dir string, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := RotateLogs(dir, MaxLogSize, KeepLogs); err != nil {
				h.log().Error("rotate logs", "err", err)
			}
		}
	}
}
