package osimage

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"strings"

	ctrarchive "github.com/containerd/containerd/v2/pkg/archive"
)

// Verify reads every layer whole before anything is written: it checks
// each layer's digest and every entry in it against the rules of
// entryRules (no ".." names, nothing written through a symlink, hard links
// only to files the image wrote, no device nodes). A damaged, truncated
// or hostile image is refused here, with the layer and the entry named.
func (a *Archive) Verify(ctx context.Context) error {
	rules := newEntryRules()
	for _, l := range a.Layers {
		err := a.readLayer(l, nil, func(r io.Reader) error {
			tr := tar.NewReader(r)
			for {
				if err := ctx.Err(); err != nil {
					return err
				}
				h, err := tr.Next()
				if err == io.EOF {
					return nil
				}
				if err != nil {
					return fmt.Errorf("not a whole tar stream: %w", err)
				}
				if err := rules.check(h); err != nil {
					return err
				}
			}
		})
		if err != nil {
			return fmt.Errorf("layer %s: %w", short(l.Digest), err)
		}
	}
	a.verified = true
	return nil
}

// Unpack writes the image's root file system into dir (created if
// missing; it should be empty), layer by layer, applying whiteouts and
// extended attributes. It verifies the whole image first (Verify) unless
// that was done already; then it writes with containerd's unpacker, which
// resolves every path inside dir, and checks every entry and digest again
// as it goes (the blobs might have changed since: a disk the user
// controls). On an error the caller throws dir away; nothing outside dir
// is ever written. progress, if set, gets the bytes of layers written so
// far.
func (a *Archive) Unpack(ctx context.Context, dir string, progress func(done, total int64)) error {
	if !a.verified {
		if err := a.Verify(ctx); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var done int64
	total := a.Size()
	rules := newEntryRules()
	for _, l := range a.Layers {
		report := func(n int64) {
			if progress != nil {
				progress(done+n, total)
			}
		}
		err := a.readLayer(l, report, func(r io.Reader) error {
			_, err := ctrarchive.Apply(ctx, dir, r, ctrarchive.WithFilter(func(h *tar.Header) (bool, error) {
				return true, rules.check(h)
			}))
			return err
		})
		if err != nil {
			return fmt.Errorf("layer %s: %w", short(l.Digest), err)
		}
		done += l.Size
	}
	return nil
}

// readLayer streams layer l (decompressed) to use and then checks its
// digest over every byte of the blob. report gets the blob's bytes read.
func (a *Archive) readLayer(l Descriptor, report func(int64), use func(io.Reader) error) error {
	r, err := a.blob(blobName(l.Digest))
	if err != nil {
		return err
	}
	h := sha256.New()
	// Large reads: a blob from a content store over gRPC costs a round
	// trip a read.
	pr := &progressReader{r: io.TeeReader(bufio.NewReaderSize(r, 1<<20), h), report: func(n int64) {
		if report != nil {
			report(n)
		}
	}}
	var tr io.Reader = pr
	if strings.HasSuffix(l.MediaType, "gzip") {
		zr, err := gzip.NewReader(pr)
		if err != nil {
			return err
		}
		tr = zr
	}
	useErr := use(tr)
	// What the tar reader left (padding, the end blocks) counts too.
	if _, err := io.Copy(io.Discard, pr); err != nil {
		return err
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	if err := checkDigest(l.Digest, sum); err != nil {
		return err // a damaged blob explains a broken tar best
	}
	if pr.n != l.Size {
		return fmt.Errorf("%d bytes, the manifest says %d (truncated?)", pr.n, l.Size)
	}
	return useErr
}

type progressReader struct {
	r      io.Reader
	n      int64
	report func(int64)
	last   int64
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += int64(n)
	if p.n-p.last >= 16<<20 || err == io.EOF {
		p.last = p.n
		p.report(p.n)
	}
	return n, err
}
