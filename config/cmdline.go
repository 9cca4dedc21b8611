package config

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"strings"
)

// Cmdline is what the kernel command line says of the config.
type Cmdline struct {
	Layer          Layer    // the rancher.* keys, the last layer
	CloudConfigURL string   // cloud-config-url=
	Problems       []string // keys that were refused, each with why
}

// ParseCmdline reads rancher.KEY=VALUE (VALUE as YAML; a key alone is
// true) and cloud-config-url=URL from a kernel command line. A bad key is
// refused on its own, with the others kept.
func ParseCmdline(cmdline string) Cmdline {
	out := Cmdline{Layer: Layer{Name: "kernel command line", Doc: map[string]any{}}}
	for _, f := range cmdlineFields(cmdline) {
		k, v, hasValue := strings.Cut(f, "=")
		if k == "cloud-config-url" {
			out.CloudConfigURL = v
			continue
		}
		if !strings.HasPrefix(k, "rancher.") {
			continue
		}
		var val any = true
		if hasValue {
			var err error
			if val, err = ParseValue(v); err != nil {
				out.Problems = append(out.Problems, fmt.Sprintf("%s: %v", k, err))
				continue
			}
		}
		one := map[string]any{}
		if err := Set(one, k, val); err != nil {
			out.Problems = append(out.Problems, err.Error())
			continue
		}
		if err := Check(one); err != nil {
			out.Problems = append(out.Problems, err.Error())
			continue
		}
		out.Layer.Doc = mergeMaps(out.Layer.Doc, one)
	}
	return out
}

// cmdlineFields splits a command line on spaces outside double quotes and
// drops the quotes.
func cmdlineFields(s string) []string {
	var out []string
	var cur strings.Builder
	quoted, any := false, false
	for _, r := range s {
		switch {
		case r == '"':
			quoted, any = !quoted, true
		case (r == ' ' || r == '\n' || r == '\t') && !quoted:
			if any {
				out = append(out, cur.String())
			}
			cur.Reset()
			any = false
		default:
			cur.WriteRune(r)
			any = true
		}
	}
	if any {
		out = append(out, cur.String())
	}
	return out
}

// UserData is user data from a datasource, classified.
type UserData struct {
	Config *Layer // a #cloud-config document
	Script []byte // a #! script
}

// maxUserData bounds user data, gzipped or not (cloud-init's limit is
// similar): a larger one is refused, not read into memory whole.
const maxUserData = 16 << 20

// ParseUserData reads user data: a #cloud-config document, a #! script, or
// either one gzipped. Empty user data is an empty document.
func ParseUserData(name string, b []byte) (UserData, error) {
	if len(b) > maxUserData {
		return UserData{}, fmt.Errorf("config: %s: %d bytes, more than the %d allowed", name, len(b), maxUserData)
	}
	if bytes.HasPrefix(b, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return UserData{}, fmt.Errorf("config: %s: gzip: %w", name, err)
		}
		u, err := io.ReadAll(io.LimitReader(zr, maxUserData+1))
		if err != nil {
			return UserData{}, fmt.Errorf("config: %s: gzip: %w", name, err)
		}
		if len(u) > maxUserData {
			return UserData{}, fmt.Errorf("config: %s: more than %d bytes once unzipped", name, maxUserData)
		}
		return ParseUserData(name+" (gzip)", u)
	}
	t := bytes.TrimLeft(b, " \t\r\n")
	switch {
	case len(t) == 0:
		return UserData{Config: &Layer{Name: name, Doc: map[string]any{}}}, nil
	case bytes.HasPrefix(t, []byte("#cloud-config")):
		l, err := ParseDoc(name, t)
		if err != nil {
			return UserData{}, err
		}
		return UserData{Config: &l}, nil
	case bytes.HasPrefix(t, []byte("#!")):
		return UserData{Script: t}, nil
	}
	first, _, _ := strings.Cut(string(t), "\n")
	if len(first) > 60 {
		first = first[:60] + "..."
	}
	return UserData{}, fmt.Errorf("config: %s: starts with %q: want #cloud-config, a #! script, or either gzipped", name, first)
}
