package osimage

import (
	"archive/tar"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
)

func signedArchive(t *testing.T, key []byte) (string, *Archive) {
	t.Helper()
	p := archive(t, osLabels, layerOf(t, []file{{name: "etc/", typ: tar.TypeDir}, {name: "etc/os-release", body: "VERSION_ID=v9\n"}}))
	if key != nil {
		k, err := ParsePrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := SignArchive(p, k, "docker.io/rosos/os"); err != nil {
			t.Fatal(err)
		}
	}
	a, err := open(t, p)
	if err != nil {
		t.Fatal(err)
	}
	return p, a
}

func verifyArchive(t *testing.T, a *Archive, keys ...[]byte) error {
	t.Helper()
	sigs, err := a.Signatures()
	if err != nil {
		t.Fatal(err)
	}
	var pems []string
	for _, k := range keys {
		pems = append(pems, string(k))
	}
	return VerifySignatures(pems, a.Subjects, sigs)
}

func TestSignedArchive(t *testing.T) {
	priv, pub, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	_, otherPub, _ := GenerateKey()
	p, a := signedArchive(t, priv)
	if a.Version() != "v9" || len(a.Layers) != 1 {
		t.Fatalf("the signed archive's image: version %q, %d layers", a.Version(), len(a.Layers))
	}
	if err := verifyArchive(t, a, otherPub, pub); err != nil {
		t.Errorf("signed by a trusted key: %v", err)
	}
	if err := verifyArchive(t, a, otherPub); err == nil || !strings.Contains(err.Error(), "not made by any key") {
		t.Errorf("signed by another key: %v", err)
	}
	_, unsigned := signedArchive(t, nil)
	if err := verifyArchive(t, unsigned, pub); err == nil || !strings.Contains(err.Error(), "not signed") {
		t.Errorf("unsigned: %v", err)
	}
	// A second signature is added beside the first.
	k2, _ := ParsePrivateKey(mustGen(t))
	if _, err := SignArchive(p, k2, "docker.io/rosos/os"); err != nil {
		t.Fatal(err)
	}
	a, _ = open(t, p)
	if sigs, _ := a.Signatures(); len(sigs) != 2 {
		t.Errorf("after a second signing: %d signatures", len(sigs))
	}
	if err := a.Unpack(t.Context(), t.TempDir(), nil); err != nil {
		t.Errorf("the signed archive does not unpack: %v", err)
	}
}

func mustGen(t *testing.T) []byte {
	priv, _, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

func TestSignatureOfAnotherImageOrTampered(t *testing.T) {
	priv, pub, _ := GenerateKey()
	k, _ := ParsePrivateKey(priv)
	_, a := signedArchive(t, nil)
	other := Payload("docker.io/rosos/os", "sha256:"+strings.Repeat("0", 64))
	sig, _ := Sign(k, other)
	if err := VerifySignatures([]string{string(pub)}, a.Subjects, []Signature{{other, sig}}); err == nil || !strings.Contains(err.Error(), "not this image") {
		t.Errorf("a signature of another image: %v", err)
	}
	mine := Payload("docker.io/rosos/os", a.Digest)
	sig, _ = Sign(k, mine)
	tampered := []byte(strings.Replace(string(mine), "rosos/os", "rosos/xx", 1))
	if err := VerifySignatures([]string{string(pub)}, a.Subjects, []Signature{{tampered, sig}}); err == nil || !strings.Contains(err.Error(), "not made by any key") {
		t.Errorf("a tampered payload: %v", err)
	}
	if err := VerifySignatures([]string{string(pub)}, a.Subjects, []Signature{{mine, sig}}); err != nil {
		t.Errorf("the right payload: %v", err)
	}
	if err := VerifySignatures([]string{"not a key"}, a.Subjects, []Signature{{mine, sig}}); err == nil || !strings.Contains(err.Error(), "public_keys[0]: not a PEM public key") {
		t.Errorf("a bad key: %v", err)
	}
}

func TestEd25519Keys(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(priv)
	pder, _ := x509.MarshalPKIXPublicKey(pub)
	_, a := signedArchive(t, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	if err := verifyArchive(t, a, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pder})); err != nil {
		t.Errorf("ed25519: %v", err)
	}
	if _, err := ParsePrivateKey([]byte("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n")); err == nil || !strings.Contains(err.Error(), "encrypted") {
		t.Errorf("an encrypted key: %v", err)
	}
}
