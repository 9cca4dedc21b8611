package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestModuleListDirTakesCompressedModules(t *testing.T) {
	mods := t.TempDir()
	for _, f := range []string{"kernel/fs/ext4/ext4.ko.xz", "kernel/fs/ext4/README", "kernel/fs/fat/vfat.ko"} {
		p := filepath.Join(mods, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	list := filepath.Join(t.TempDir(), "modules")
	if err := os.WriteFile(list, []byte("# fs\ndir:kernel/fs/ext4\ndir:kernel/fs/fat\nloop\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := readModuleList(mods, list)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"ext4", "vfat", "loop"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestModuleListDirWithoutModulesIsAnError(t *testing.T) {
	mods := t.TempDir()
	if err := os.MkdirAll(filepath.Join(mods, "kernel/fs/empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	list := filepath.Join(t.TempDir(), "modules")
	if err := os.WriteFile(list, []byte("loop\ndir:kernel/fs/empty\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := readModuleList(mods, list)
	if err == nil || !strings.Contains(err.Error(), ":2: no modules under kernel/fs/empty") {
		t.Fatalf("err = %v, want the line and directory named", err)
	}
}
