package osimage

import (
	"archive/tar"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"slices"
	"strings"
)

// Signatures in the form cosign writes them: a signature is an OCI
// manifest whose layers are "simple signing" payloads naming the signed
// manifest's digest, each with its signature in an annotation. In a
// registry it is the tag sha256-HEX.sig of the signed image's repository;
// in an OS image archive, a manifest of index.json with that name as its
// org.opencontainers.image.ref.name. Keys are ECDSA P-256 (cosign's kind:
// the signature is over the payload's SHA-256) or Ed25519, as PEM.
const (
	MediaTypeSimpleSigning = "application/vnd.dev.cosign.simplesigning.v1+json"
	AnnotationSignature    = "dev.cosignproject.cosign/signature"
	annotationRefName      = "org.opencontainers.image.ref.name"
	signatureType          = "cosign container image signature"
	mtConfig               = "application/vnd.oci.image.config.v1+json"
)

// Signature is one signed payload.
type Signature struct {
	Payload []byte
	Sig     []byte
}

// SignatureTag is the tag (and the archive's ref name) of the signatures
// of the manifest with digest d.
func SignatureTag(d string) string { return strings.Replace(d, ":", "-", 1) + ".sig" }

func isSignatureRef(d Descriptor) bool {
	return strings.HasSuffix(d.Annotations[annotationRefName], ".sig")
}

type payload struct {
	Critical struct {
		Identity struct {
			DockerReference string `json:"docker-reference"`
		} `json:"identity"`
		Image struct {
			DockerManifestDigest string `json:"docker-manifest-digest"`
		} `json:"image"`
		Type string `json:"type"`
	} `json:"critical"`
	Optional map[string]any `json:"optional"`
}

// Payload is what is signed for the manifest with digest d of repository
// ref (docker.io/rosos/os).
func Payload(ref, d string) []byte {
	var p payload
	p.Critical.Identity.DockerReference = ref
	p.Critical.Image.DockerManifestDigest = d
	p.Critical.Type = signatureType
	b, _ := json.Marshal(p)
	return b
}

// GenerateKey makes an ECDSA P-256 key pair: the private key as PKCS #8
// PEM, the public key as PKIX PEM (what rancher.upgrade.public_keys takes).
func GenerateKey() (private, public []byte, err error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, nil, err
	}
	pub, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), nil
}

// ParsePrivateKey reads a PEM private key (PKCS #8, or SEC 1 "EC PRIVATE
// KEY") of a kind Sign supports.
func ParsePrivateKey(b []byte) (crypto.Signer, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("not a PEM private key")
	}
	if blk.Type == "EC PRIVATE KEY" {
		return x509.ParseECPrivateKey(blk.Bytes)
	}
	if strings.Contains(blk.Type, "ENCRYPTED") {
		return nil, fmt.Errorf("an encrypted key (%s): give the key unencrypted (openssl pkcs8 -topk8 -nocrypt)", blk.Type)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("private key: %w", err)
	}
	if err := checkKind(k); err != nil {
		return nil, err
	}
	return k.(crypto.Signer), nil
}

// checkKind refuses keys other than ECDSA P-256 and Ed25519, public or
// private.
func checkKind(k any) error {
	switch k := k.(type) {
	case *ecdsa.PrivateKey:
		return checkKind(&k.PublicKey)
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return fmt.Errorf("an ECDSA key on %s: only P-256 is supported", k.Curve.Params().Name)
		}
		return nil
	case ed25519.PrivateKey, ed25519.PublicKey:
		return nil
	}
	return fmt.Errorf("a %T key: only ECDSA P-256 and Ed25519 are supported", k)
}

// ParsePublicKey reads one PEM public key (PKIX, "PUBLIC KEY") of a kind
// Verify supports.
func ParsePublicKey(s string) (crypto.PublicKey, error) {
	blk, rest := pem.Decode([]byte(strings.TrimSpace(s)))
	if blk == nil || blk.Type != "PUBLIC KEY" {
		return nil, errors.New(`not a PEM public key (want "-----BEGIN PUBLIC KEY-----")`)
	}
	if len(strings.TrimSpace(string(rest))) != 0 {
		return nil, errors.New("more than one PEM block: give one key per list entry")
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	if err := checkKind(k); err != nil {
		return nil, err
	}
	return k, nil
}

// Sign signs payload with key as cosign does.
func Sign(key crypto.Signer, payload []byte) ([]byte, error) {
	if _, ok := key.(ed25519.PrivateKey); ok {
		return key.Sign(rand.Reader, payload, crypto.Hash(0))
	}
	sum := sha256.Sum256(payload)
	return key.Sign(rand.Reader, sum[:], crypto.SHA256)
}

func verifyOne(k crypto.PublicKey, payload, sig []byte) bool {
	switch k := k.(type) {
	case *ecdsa.PublicKey:
		sum := sha256.Sum256(payload)
		return ecdsa.VerifyASN1(k, sum[:], sig)
	case ed25519.PublicKey:
		return ed25519.Verify(k, payload, sig)
	}
	return false
}

// VerifySignatures checks that one of sigs is a signature, by one of
// keys (PEM), of a payload naming one of subjects (the image's digests).
// The error says why none is.
func VerifySignatures(keys []string, subjects []string, sigs []Signature) error {
	if len(sigs) == 0 {
		return errors.New("the image is not signed, and rancher.upgrade.public_keys requires a signature")
	}
	var pubs []crypto.PublicKey
	for i, s := range keys {
		k, err := ParsePublicKey(s)
		if err != nil {
			return fmt.Errorf("rancher.upgrade.public_keys[%d]: %w", i, err)
		}
		pubs = append(pubs, k)
	}
	var why []string
	for i, s := range sigs {
		var p payload
		if err := json.Unmarshal(s.Payload, &p); err != nil || p.Critical.Type != signatureType {
			why = append(why, fmt.Sprintf("signature %d: not a cosign signature payload", i+1))
			continue
		}
		found := false
		for _, k := range pubs {
			if verifyOne(k, s.Payload, s.Sig) {
				found = true
				break
			}
		}
		if !found {
			why = append(why, fmt.Sprintf("signature %d: not made by any key of rancher.upgrade.public_keys", i+1))
			continue
		}
		for _, d := range subjects {
			if p.Critical.Image.DockerManifestDigest == d {
				return nil
			}
		}
		why = append(why, fmt.Sprintf("signature %d: signs %s, not this image (%s)", i+1, p.Critical.Image.DockerManifestDigest, strings.Join(subjects, ", ")))
	}
	return fmt.Errorf("no valid signature: %s", strings.Join(why, "; "))
}

// ParseSignatureManifest reads the signatures of a signature manifest,
// fetching each payload with blob (which checks its digest).
func ParseSignatureManifest(b []byte, blob func(Descriptor) ([]byte, error)) ([]Signature, error) {
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("signature manifest: %w", err)
	}
	var out []Signature
	for _, l := range m.Layers {
		if l.MediaType != MediaTypeSimpleSigning {
			continue
		}
		sig, err := base64.StdEncoding.DecodeString(l.Annotations[AnnotationSignature])
		if err != nil || len(sig) == 0 {
			return nil, fmt.Errorf("signature layer %s: no base64 signature in %s", short(l.Digest), AnnotationSignature)
		}
		if l.Size > 1<<20 {
			return nil, fmt.Errorf("signature layer %s: %d bytes: too big", short(l.Digest), l.Size)
		}
		p, err := blob(l)
		if err != nil {
			return nil, fmt.Errorf("signature layer %s: %w", short(l.Digest), err)
		}
		out = append(out, Signature{Payload: p, Sig: sig})
	}
	return out, nil
}

// Signatures are the signatures an archive carries for this image (none
// for an image opened with OpenBlobs: the registry holds those).
func (a *Archive) Signatures() ([]Signature, error) {
	var out []Signature
	for _, d := range a.index.Manifests {
		if !isSignatureRef(d) {
			continue
		}
		signs := false
		for _, s := range a.Subjects {
			signs = signs || d.Annotations[annotationRefName] == SignatureTag(s)
		}
		if !signs {
			continue
		}
		var raw json.RawMessage
		if err := a.readJSON(blobName(d.Digest), d.Digest, &raw); err != nil {
			return nil, fmt.Errorf("signature manifest: %w", err)
		}
		sigs, err := ParseSignatureManifest(raw, func(l Descriptor) ([]byte, error) {
			var p json.RawMessage
			err := a.readJSON(blobName(l.Digest), l.Digest, &p)
			return p, err
		})
		if err != nil {
			return nil, err
		}
		out = append(out, sigs...)
	}
	return out, nil
}

// SignatureBlobs are the blobs of a signature manifest holding sigs: the
// manifest, its config and the payloads, by digest; and the manifest's
// descriptor.
func SignatureBlobs(sigs []Signature) (Descriptor, map[string][]byte) {
	blobs := map[string][]byte{}
	add := func(b []byte) string {
		s := sha256.Sum256(b)
		d := "sha256:" + hex.EncodeToString(s[:])
		blobs[d] = b
		return d
	}
	var layers []Descriptor
	var diffIDs []string
	for _, s := range sigs {
		d := add(s.Payload)
		diffIDs = append(diffIDs, d)
		layers = append(layers, Descriptor{MediaType: MediaTypeSimpleSigning, Digest: d, Size: int64(len(s.Payload)),
			Annotations: map[string]string{AnnotationSignature: base64.StdEncoding.EncodeToString(s.Sig)}})
	}
	cfg, _ := json.Marshal(map[string]any{"architecture": "", "os": "", "config": map[string]any{},
		"rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs}})
	cd := add(cfg)
	man, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": mtManifest,
		"config": Descriptor{MediaType: mtConfig, Digest: cd, Size: int64(len(cfg))}, "layers": layers})
	md := add(man)
	return Descriptor{MediaType: mtManifest, Digest: md, Size: int64(len(man))}, blobs
}

// SignArchive adds a signature by key to the OS image archive at p (the
// image's manifest, for repository ref), keeping any it had: the archive
// is written anew beside p and renamed over it. It returns the signed
// digest.
func SignArchive(p string, key crypto.Signer, ref string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	a, err := Open(f, fi.Size())
	if err != nil {
		return "", err
	}
	sigs, err := a.Signatures()
	if err != nil {
		return "", err
	}
	pl := Payload(ref, a.Digest)
	sig, err := Sign(key, pl)
	if err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	sigs = append(sigs, Signature{Payload: pl, Sig: sig})
	desc, blobs := SignatureBlobs(sigs)
	desc.Annotations = map[string]string{annotationRefName: SignatureTag(a.Digest)}
	idx := map[string]any{}
	ib, err := io.ReadAll(mustBlob(a.blob("index.json")))
	if err != nil {
		return "", err
	}
	if err := json.Unmarshal(ib, &idx); err != nil {
		return "", fmt.Errorf("index.json: %w", err)
	}
	var kept []Descriptor
	for _, d := range a.index.Manifests {
		if d.Annotations[annotationRefName] != SignatureTag(a.Digest) {
			kept = append(kept, d)
		}
	}
	idx["manifests"] = append(kept, desc)
	ib, err = json.Marshal(idx)
	if err != nil {
		return "", err
	}
	tmp := p + ".signing"
	out, err := os.Create(tmp)
	if err != nil {
		return "", err
	}
	defer func() { _ = os.Remove(tmp) }()
	tw := tar.NewWriter(out)
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	tr := tar.NewReader(f)
	seen := map[string]bool{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", err
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "./"))
		if name == "index.json" {
			continue
		}
		seen[name] = true
		if err := tw.WriteHeader(h); err != nil {
			return "", err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return "", err
		}
	}
	files := map[string][]byte{"index.json": ib}
	for d, b := range blobs {
		if !seen[blobName(d)] {
			files[blobName(d)] = b
		}
	}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		b := files[name]
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			return "", err
		}
		if _, err := tw.Write(b); err != nil {
			return "", err
		}
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	if err := out.Sync(); err != nil {
		return "", err
	}
	if err := out.Close(); err != nil {
		return "", err
	}
	return a.Digest, os.Rename(tmp, p)
}

func mustBlob(r *io.SectionReader, err error) io.Reader {
	if err != nil {
		return errReader{err}
	}
	return r
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
