package config

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"fmt"
	"io"
)

// Decode decodes a write_files entry's content by its encoding: "" (plain),
// b64/base64, gzip/gz (raw gzip bytes, as YAML's !!binary gives them), or
// gz+b64 (base64 of gzip).
func Decode(encoding, content string) ([]byte, error) {
	switch encoding {
	case "":
		return []byte(content), nil
	case "b64", "base64":
		return b64(content)
	case "gzip", "gz":
		return gunzip([]byte(content))
	case "gz+b64", "gzip+b64", "gz+base64", "gzip+base64":
		b, err := b64(content)
		if err != nil {
			return nil, err
		}
		return gunzip(b)
	}
	return nil, fmt.Errorf("encoding %q: want b64, gzip or gz+b64 (or none)", encoding)
}

func b64(s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(string(bytes.Join(bytes.Fields([]byte(s)), nil)))
	if err != nil {
		return nil, fmt.Errorf("content: not valid base64: %w", err)
	}
	return b, nil
}

func gunzip(b []byte) ([]byte, error) {
	if len(b) == 0 {
		return nil, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("content: not gzip: %w", err)
	}
	out, err := io.ReadAll(io.LimitReader(zr, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("content: gzip: %w", err)
	}
	return out, nil
}
