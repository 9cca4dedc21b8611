package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// rawLayer is a layer stored as a plain tar, not gzip: a node imports it
// without decompressing (the slot's squashfs compresses it on disk), which
// under software emulation is most of the time a first boot spends on its
// images.
type rawLayer struct {
	path string
	hash v1.Hash
	size int64
}

func newRawLayer(path string) (*rawLayer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &rawLayer{path: path, size: n, hash: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}}, nil
}

func (l *rawLayer) Digest() (v1.Hash, error)             { return l.hash, nil }
func (l *rawLayer) DiffID() (v1.Hash, error)             { return l.hash, nil }
func (l *rawLayer) Compressed() (io.ReadCloser, error)   { return os.Open(l.path) }
func (l *rawLayer) Uncompressed() (io.ReadCloser, error) { return os.Open(l.path) }
func (l *rawLayer) Size() (int64, error)                 { return l.size, nil }
func (l *rawLayer) MediaType() (types.MediaType, error)  { return types.OCIUncompressedLayer, nil }
