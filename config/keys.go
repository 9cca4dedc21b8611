package config

import (
	"fmt"
	"reflect"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// SplitKey splits a key path: dots separate keys, and a key that has dots of
// its own is written in brackets: rancher.network.interfaces[eth0.100].mtu.
func SplitKey(key string) ([]string, error) {
	var out []string
	rest := key
	for rest != "" {
		if strings.HasPrefix(rest, "[") {
			end := strings.IndexByte(rest, ']')
			if end < 0 {
				return nil, fmt.Errorf("key %q: [ without ]", key)
			}
			out = append(out, rest[1:end])
			rest = strings.TrimPrefix(rest[end+1:], ".")
			continue
		}
		i := strings.IndexAny(rest, ".[")
		if i < 0 {
			out = append(out, rest)
			break
		}
		out = append(out, rest[:i])
		if rest[i] == '.' {
			rest = rest[i+1:]
		} else {
			rest = rest[i:]
		}
	}
	for _, p := range out {
		if p == "" {
			return nil, fmt.Errorf("key %q: an empty part", key)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no key given")
	}
	return joinScalarMapKeys(out), nil
}

// joinScalarMapKeys keeps the rest of a path whole where it names a key of
// a map of plain values, whose keys have dots of their own:
// rancher.sysctl.net.ipv4.ip_forward is key "net.ipv4.ip_forward" of
// rancher.sysctl.
func joinScalarMapKeys(parts []string) []string {
	t := reflect.TypeOf(Config{})
	for i, p := range parts {
		switch t.Kind() {
		case reflect.Struct:
			found := false
			for j := 0; j < t.NumField(); j++ {
				if yamlName(t.Field(j)) == p {
					t, found = t.Field(j).Type, true
					break
				}
			}
			if !found {
				return parts
			}
		case reflect.Map:
			if k := t.Elem().Kind(); k == reflect.String || k == reflect.Bool || k == reflect.Int {
				return append(parts[:i:i], strings.Join(parts[i:], "."))
			}
			t = t.Elem()
		default:
			return parts
		}
	}
	return parts
}

// Get returns the value at key in doc.
func Get(doc map[string]any, key string) (any, bool, error) {
	parts, err := SplitKey(key)
	if err != nil {
		return nil, false, err
	}
	var cur any = doc
	for _, p := range parts {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false, nil
		}
		if cur, ok = m[p]; !ok {
			return nil, false, nil
		}
	}
	return cur, true, nil
}

// Set sets the value at key in doc, making the maps on the way. A value of
// nil removes the key.
func Set(doc map[string]any, key string, value any) error {
	parts, err := SplitKey(key)
	if err != nil {
		return err
	}
	m := doc
	for i, p := range parts[:len(parts)-1] {
		next, ok := m[p]
		if !ok || next == nil {
			nm := map[string]any{}
			m[p] = nm
			m = nm
			continue
		}
		nm, ok := next.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: is %s, not a map: cannot set %s in it", strings.Join(parts[:i+1], "."), describe(next), key)
		}
		m = nm
	}
	last := parts[len(parts)-1]
	if value == nil {
		delete(m, last)
		return nil
	}
	m[last] = value
	return nil
}

// ParseValue reads a value given on a command line as YAML: true, 42,
// [a, b], {k: v}; anything else is a string.
func ParseValue(s string) (any, error) {
	if strings.TrimSpace(s) == "" {
		return s, nil
	}
	var v any
	if err := yaml.Unmarshal([]byte(s), &v); err != nil {
		return nil, fmt.Errorf("value %q: not valid YAML: %s", s, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	return normalize(v), nil
}

// normalize turns the maps YAML gives for a value into map[string]any, as
// documents have.
func normalize(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = normalize(e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = normalize(e)
		}
		return x
	}
	return v
}

// Change is one key whose value differs between two documents.
type Change struct {
	Key      string `json:"key"`
	Old, New any    `json:",omitempty"`
}

// Diff lists the keys whose values differ from old to new: maps are
// compared key by key, anything else whole. Keys are in order.
func Diff(old, new map[string]any) []Change {
	var out []Change
	diff("", old, new, &out)
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

func diff(path string, a, b map[string]any, out *[]Change) {
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	for k := range keys {
		p := k
		if strings.Contains(k, ".") {
			p = "[" + k + "]"
		}
		if path != "" {
			if strings.HasPrefix(p, "[") {
				p = path + p
			} else {
				p = path + "." + p
			}
		}
		av, bv := a[k], b[k]
		am, aok := av.(map[string]any)
		bm, bok := bv.(map[string]any)
		if aok && bok {
			diff(p, am, bm, out)
			continue
		}
		if !reflect.DeepEqual(av, bv) {
			*out = append(*out, Change{Key: p, Old: av, New: bv})
		}
	}
}

// Under reports whether key is prefix or below it (rancher.network.dns is
// under rancher.network).
func Under(key, prefix string) bool {
	return key == prefix || strings.HasPrefix(key, prefix+".") || strings.HasPrefix(key, prefix+"[")
}

// Copy returns a deep copy of a document.
func Copy(doc map[string]any) map[string]any {
	return copyValue(doc).(map[string]any)
}

func copyValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = copyValue(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = copyValue(e)
		}
		return out
	}
	return v
}

// MergeDocs merges documents, later wins, as Merge does, without decoding:
// maps merge key by key, anything else (lists included) is replaced whole,
// except ssh_authorized_keys, which gathers the keys of every layer (a
// cloud's metadata, a seed and ros config set each add keys; none takes
// away another's).
func MergeDocs(layers ...Layer) map[string]any {
	merged := map[string]any{}
	var keys []any
	seen := map[string]bool{}
	for _, l := range layers {
		merged = mergeMaps(merged, l.Doc)
		if ks, ok := l.Doc["ssh_authorized_keys"].([]any); ok {
			for _, k := range ks {
				if s := fmt.Sprint(k); !seen[s] {
					seen[s] = true
					keys = append(keys, k)
				}
			}
		}
	}
	if keys != nil {
		merged["ssh_authorized_keys"] = keys
	}
	return merged
}
