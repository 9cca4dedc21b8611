// Package grubenv reads and writes GRUB's environment block (the file that
// grub-editenv manages and GRUB's load_env / save_env use), and holds the A/B
// boot-counting state that the boot loader script and the OS share.
package grubenv

import (
	"bytes"
	"fmt"
	"os"
	"sort"
	"strings"
)

const (
	header = "# GRUB Environment Block\n"
	// Size is the size of the block GRUB creates and expects; save_env never
	// grows the file, so it must be exactly this big.
	Size = 1024
)

// Env is the content of an environment block: variable name to value.
type Env map[string]string

// Parse decodes an environment block.
func Parse(b []byte) (Env, error) {
	if !bytes.HasPrefix(b, []byte(header)) {
		return nil, fmt.Errorf("grubenv: not a GRUB environment block (no %q header)", strings.TrimSpace(header))
	}
	env := Env{}
	for _, line := range splitLines(b[len(header):]) {
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("grubenv: line %q has no '='", line)
		}
		env[k] = v
	}
	return env, nil
}

// splitLines splits on unescaped newlines and removes GRUB's escapes.
func splitLines(b []byte) []string {
	var lines []string
	var cur strings.Builder
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case c == '\\' && i+1 < len(b):
			i++
			cur.WriteByte(b[i])
		case c == '\n':
			lines = append(lines, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	if cur.Len() > 0 {
		lines = append(lines, cur.String())
	}
	return lines
}

// Encode returns the block, padded with '#' to Size bytes, with variables in
// name order so that the same Env always gives the same bytes.
func (e Env) Encode() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString(header)
	keys := make([]string, 0, len(e))
	for k := range e {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == "" || strings.ContainsAny(k, "=\n\\") {
			return nil, fmt.Errorf("grubenv: bad variable name %q", k)
		}
		buf.WriteString(k)
		buf.WriteByte('=')
		for _, c := range []byte(e[k]) {
			if c == '\\' || c == '\n' {
				buf.WriteByte('\\')
			}
			buf.WriteByte(c)
		}
		buf.WriteByte('\n')
	}
	if buf.Len() > Size {
		return nil, fmt.Errorf("grubenv: %d bytes of variables do not fit in the %d-byte block", buf.Len(), Size)
	}
	buf.Write(bytes.Repeat([]byte{'#'}, Size-buf.Len()))
	return buf.Bytes(), nil
}

// Read reads the block at path.
func Read(path string) (Env, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("grubenv: %w", err)
	}
	env, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return env, nil
}

// Write writes env to path in place and syncs it. It writes in place rather
// than by rename because GRUB's save_env writes to the file's existing blocks:
// the file's size and place on the FAT file system stay the same.
func Write(path string, env Env) error {
	b, err := env.Encode()
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("grubenv: %w", err)
	}
	if _, err := f.WriteAt(b, 0); err != nil {
		f.Close()
		return fmt.Errorf("grubenv: write %s: %w", path, err)
	}
	if err := f.Truncate(Size); err != nil {
		f.Close()
		return fmt.Errorf("grubenv: %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("grubenv: sync %s: %w", path, err)
	}
	return f.Close()
}
