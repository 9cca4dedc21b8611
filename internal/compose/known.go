package compose

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
)

// Known parses: compose-go's first parse in a process costs about 18 ms on
// the build machine (its JSON schema compiled, then the services read),
// about a quarter of a second of the service manager's config step at boot
// under emulation. The OS image carries the parses of its own services and
// of its catalog's (paths.ParsedServices), made when it is built by the
// same code: a boot whose services are the image's reads them from there
// and never runs compose-go. Definitions with anything else in them (a
// user's service, another environment) have another key and are parsed as
// before.

// knownFormat changes when Service or the key changes, so that a file of
// another format is not read.
const knownFormat = "rosos-parsed-services/1"

type knownDoc struct {
	Format string                     `json:"format"`
	Parses map[string]json.RawMessage `json:"parses"`
}

var known struct {
	sync.Mutex
	parses map[string]json.RawMessage
	misses int // parses made with compose-go
}

// Misses is how many times this process parsed with compose-go: a boot of
// the image's own config makes none.
func Misses() int {
	known.Lock()
	defer known.Unlock()
	return known.misses
}

// LoadKnown reads a file of known parses (WriteKnown's) for Parse to use.
// A missing file is no error: everything is parsed.
func LoadKnown(path string) error {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("known parses: %w", err)
	}
	var doc knownDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("known parses %s: %w", path, err)
	}
	if doc.Format != knownFormat {
		return fmt.Errorf("known parses %s: format %q, want %q", path, doc.Format, knownFormat)
	}
	known.Lock()
	defer known.Unlock()
	known.parses = doc.Parses
	return nil
}

// lookupKnown returns a fresh copy of a known parse.
func lookupKnown(key string) ([]Service, bool) {
	known.Lock()
	b, ok := known.parses[key]
	known.Unlock()
	if !ok {
		return nil, false
	}
	var out []Service
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, false
	}
	return out, true
}

// remember keeps a parse this process made, for the next Parse of the same
// input (the manager parses the config when it checks it and again when it
// starts the services). At most maxRemembered: a long-running manager sees
// few configs, but each is kept only so long.
func remember(key string, ss []Service) {
	known.Lock()
	defer known.Unlock()
	known.misses++
	if len(known.parses) >= maxRemembered {
		return
	}
	b, err := json.Marshal(ss)
	if err != nil {
		return
	}
	if known.parses == nil {
		known.parses = map[string]json.RawMessage{}
	}
	known.parses[key] = b
}

const maxRemembered = 64

// Input is one set of definitions to parse ahead: the raw services and the
// environment their ${VAR}s may use, as Parse takes them.
type Input struct {
	Raw map[string]any
	Env map[string]string
}

// WriteKnown parses each input with compose-go and writes the results in
// the form LoadKnown reads. An input that does not parse is an error: the
// image's own services must.
func WriteKnown(w io.Writer, inputs []Input) error {
	doc := knownDoc{Format: knownFormat, Parses: map[string]json.RawMessage{}}
	for _, in := range inputs {
		key := Key(in.Raw, in.Env)
		ss, err := parse(context.Background(), in.Raw, in.Env)
		if err != nil {
			return err
		}
		b, err := json.Marshal(ss)
		if err != nil {
			return err
		}
		doc.Parses[key] = b
	}
	enc := json.NewEncoder(w)
	return enc.Encode(doc)
}

// Key identifies what Parse is given: the services with every value's Go
// type (an int and a float that print the same differ) and the environment.
func Key(raw map[string]any, env map[string]string) string {
	h := sha256.New()
	writeCanonical(h, raw)
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(h, "env %q=%q;", k, env[k])
	}
	return hex.EncodeToString(h.Sum(nil))
}

func writeCanonical(w io.Writer, v any) {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		fmt.Fprintf(w, "{%d:", len(x))
		for _, k := range keys {
			fmt.Fprintf(w, "%q=", k)
			writeCanonical(w, x[k])
		}
		fmt.Fprintf(w, "}")
	case []any:
		fmt.Fprintf(w, "[%d:", len(x))
		for _, e := range x {
			writeCanonical(w, e)
			fmt.Fprintf(w, ",")
		}
		fmt.Fprintf(w, "]")
	case string:
		fmt.Fprintf(w, "s%q", x)
	default:
		// Scalars (and anything else) with their type: int 1, float 1
		// and "1" are three keys.
		fmt.Fprintf(w, "%T(%#v)", x, x)
	}
}
