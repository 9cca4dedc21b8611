package compose

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func resetKnown() {
	known.Lock()
	defer known.Unlock()
	known.parses, known.misses = nil, 0
}

func TestKnownParses(t *testing.T) {
	resetKnown()
	t.Cleanup(resetKnown)
	raw := imageServices(t)
	env := map[string]string{"ROS_VERSION": "v1"}
	fresh, err := parse(context.Background(), raw, env)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := WriteKnown(&b, []Input{{Raw: raw, Env: env}}); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "parsed.json")
	if err := os.WriteFile(f, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := LoadKnown(f); err != nil {
		t.Fatal(err)
	}
	got, err := Parse(context.Background(), raw, env)
	if err != nil {
		t.Fatal(err)
	}
	if Misses() != 0 {
		t.Fatalf("the image's own services were parsed with compose-go (%d)", Misses())
	}
	if !reflect.DeepEqual(got, fresh) {
		t.Fatalf("known parse differs from compose-go's:\n%+v\n%+v", got, fresh)
	}
	// Each caller gets its own copy: the daemon appends to Env.
	got[0].Env = append(got[0].Env, "X=1")
	again, _ := Parse(context.Background(), raw, env)
	if !reflect.DeepEqual(again, fresh) {
		t.Fatal("a caller's change reached the known parse")
	}

	// Another environment, or a changed definition, is parsed.
	if _, err := Parse(context.Background(), raw, map[string]string{"ROS_VERSION": "v2"}); err != nil {
		t.Fatal(err)
	}
	if Misses() != 1 {
		t.Fatalf("another environment: %d parses, want 1", Misses())
	}
	changed := imageServices(t)
	for _, def := range changed {
		def.(map[string]any)["labels"] = map[string]any{"x": "y"}
		break
	}
	if _, err := Parse(context.Background(), changed, env); err != nil {
		t.Fatal(err)
	}
	if Misses() != 2 {
		t.Fatalf("a changed definition: %d parses, want 2", Misses())
	}
	// The same input again is remembered.
	if _, err := Parse(context.Background(), changed, env); err != nil {
		t.Fatal(err)
	}
	if Misses() != 2 {
		t.Fatalf("a definition parsed before: %d parses, want 2", Misses())
	}
}

func TestKeyTypes(t *testing.T) {
	env := map[string]string{}
	a := Key(map[string]any{"s": map[string]any{"cpu_shares": 5}}, env)
	b := Key(map[string]any{"s": map[string]any{"cpu_shares": 5.0}}, env)
	c := Key(map[string]any{"s": map[string]any{"cpu_shares": "5"}}, env)
	if a == b || b == c || a == c {
		t.Fatalf("an int, a float and a string of 5 share a key: %s %s %s", a, b, c)
	}
	x := Key(map[string]any{"a": map[string]any{"image": "i"}}, map[string]string{"A": "1"})
	y := Key(map[string]any{"a": map[string]any{"image": "i"}}, map[string]string{"A": "2"})
	if x == y {
		t.Fatal("two environments share a key")
	}
	// Map order never matters.
	m1 := map[string]any{"a": 1, "b": []any{"x", map[string]any{"c": true, "d": nil}}}
	m2 := map[string]any{"b": []any{"x", map[string]any{"d": nil, "c": true}}, "a": 1}
	if Key(m1, env) != Key(m2, env) {
		t.Fatal("the same map in another order has another key")
	}
}

func TestLoadKnownErrors(t *testing.T) {
	t.Cleanup(resetKnown)
	dir := t.TempDir()
	if err := LoadKnown(filepath.Join(dir, "none.json")); err != nil {
		t.Fatalf("a missing file: %v", err)
	}
	bad := filepath.Join(dir, "bad.json")
	_ = os.WriteFile(bad, []byte("{not json"), 0o644)
	if err := LoadKnown(bad); err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("bad JSON: %v", err)
	}
	other := filepath.Join(dir, "other.json")
	_ = os.WriteFile(other, []byte(`{"format":"something/9","parses":{}}`), 0o644)
	if err := LoadKnown(other); err == nil || !strings.Contains(err.Error(), "something/9") {
		t.Fatalf("another format: %v", err)
	}
}

// compose-go changes the maps it is given; Parse hands it copies, so the
// caller's config (and its key) stay as they were.
func TestParseLeavesItsInputAlone(t *testing.T) {
	t.Cleanup(resetKnown)
	raw := imageServices(t)
	env := map[string]string{"ROS_VERSION": "v1"}
	before := Key(raw, env)
	if _, err := parse(context.Background(), raw, env); err != nil {
		t.Fatal(err)
	}
	if Key(raw, env) != before || len(env) != 1 {
		t.Fatalf("parse changed its input (env now %v)", env)
	}
}
