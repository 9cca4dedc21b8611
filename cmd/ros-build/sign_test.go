package main

import (
	"archive/tar"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rosos/ros/system/osimage"
)

// tarDir writes the files under dir as a tar at out (an OCI archive from a
// layout, as build/os-image.sh makes it).
func tarDir(t *testing.T, dir, out string) {
	t.Helper()
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(f)
	err = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: rel, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err = tw.Write(b)
		return err
	})
	if err == nil {
		err = tw.Close()
	}
	if err == nil {
		err = f.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
}

// TestKeygenAndSign: the OS image archive build/os-image.sh packs, signed
// with a key ros-build keygen made, verifies with the public key (and not
// with another), as a node with rancher.upgrade.public_keys checks it.
func TestKeygenAndSign(t *testing.T) {
	dir := t.TempDir()
	rootfs := filepath.Join(dir, "rootfs.tar")
	writeTar(t, rootfs, []file{{name: "etc/", typ: tar.TypeDir}, {name: "etc/os-release", body: "VERSION_ID=v9\n", typ: tar.TypeReg}})
	oci := ociCmd()
	oci.SetArgs([]string{"--rootfs", rootfs, "--ref", "docker.io/rosos/os:v9", "--layout", filepath.Join(dir, "layout"),
		"--label", "io.rosos.os=true", "--label", "org.opencontainers.image.version=v9"})
	if err := oci.Execute(); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(dir, "os.oci.tar")
	tarDir(t, filepath.Join(dir, "layout"), archive)

	for _, prefix := range []string{"signing", "other"} {
		kg := keygenCmd()
		kg.SetArgs([]string{filepath.Join(dir, prefix)})
		if err := kg.Execute(); err != nil {
			t.Fatal(err)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "signing.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("signing.key: %v %v, want mode 0600", fi.Mode(), err)
	}
	kg := keygenCmd()
	kg.SetArgs([]string{filepath.Join(dir, "signing")})
	if err := kg.Execute(); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Errorf("keygen over an existing key: %v", err)
	}
	sign := signCmd()
	sign.SetArgs([]string{"--key", filepath.Join(dir, "signing.key"), archive})
	if err := sign.Execute(); err != nil {
		t.Fatal(err)
	}

	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	a, err := osimage.Open(f, fi.Size())
	if err != nil {
		t.Fatalf("the signed archive: %v", err)
	}
	sigs, err := a.Signatures()
	if err != nil || len(sigs) != 1 {
		t.Fatalf("%d signatures, %v", len(sigs), err)
	}
	pub, _ := os.ReadFile(filepath.Join(dir, "signing.pub"))
	other, _ := os.ReadFile(filepath.Join(dir, "other.pub"))
	if err := osimage.VerifySignatures([]string{string(pub)}, a.Subjects, sigs); err != nil {
		t.Errorf("with the signing key's public key: %v", err)
	}
	if err := osimage.VerifySignatures([]string{string(other)}, a.Subjects, sigs); err == nil {
		t.Errorf("verified with another key")
	}
}
