package registry

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/rosos/ros/config"
	"github.com/rosos/ros/system/osimage"
)

// authRegistry serves a registry that wants user bob, password secret
// (basic auth), and counts the requests it refused.
func authRegistry(t *testing.T) (host string, refused *atomic.Int32) {
	refused = &atomic.Int32{}
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "bob" || p != "secret" {
			refused.Add(1)
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), refused
}

func push(t *testing.T, ref string, img v1.Image) v1.Hash {
	t.Helper()
	tag, err := name.NewTag(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img, remote.WithAuth(&authn.Basic{Username: "bob", Password: "secret"})); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	return d
}

// TestResolverUsesRegistryAuths resolves an image in a registry that
// wants credentials: refused without them, resolved with the ones
// rancher.registry_auths gives for its host.
func TestResolverUsesRegistryAuths(t *testing.T) {
	host, refused := authRegistry(t)
	img, _ := random.Image(64, 1)
	d := push(t, host+"/rosos/app:1", img)
	ctx := context.Background()

	if _, _, err := NewResolver(true, nil).Resolve(ctx, host+"/rosos/app:1"); err == nil {
		t.Errorf("resolved without credentials")
	}
	if refused.Load() == 0 {
		t.Errorf("the registry refused nothing")
	}
	l, err := config.ParseDoc("test", []byte(fmt.Sprintf("rancher:\n  registry_auths:\n    http://%s/v2/:\n      auth: Ym9iOnNlY3JldA==\n", host)))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Merge(l)
	if err != nil {
		t.Fatal(err)
	}
	creds := ConfigCredentials(func() config.Config { return cfg })
	_, desc, err := NewResolver(true, creds).Resolve(ctx, host+"/rosos/app:1")
	if err != nil {
		t.Fatalf("with rancher.registry_auths: %v", err)
	}
	if desc.Digest.String() != d.String() {
		t.Errorf("resolved %s, pushed %s", desc.Digest, d)
	}
	wrong := func(string) (string, string, error) { return "bob", "guess", nil }
	if _, _, err := NewResolver(true, wrong).Resolve(ctx, host+"/rosos/app:1"); err == nil {
		t.Errorf("resolved with a wrong password")
	}
}

// signatureImage is a signature as cosign pushes it, made with
// go-containerregistry: a manifest of simple-signing layers with their
// signatures in annotations.
func signatureImage(t *testing.T, sigs ...osimage.Signature) v1.Image {
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	for _, s := range sigs {
		var err error
		img, err = mutate.Append(img, mutate.Addendum{
			Layer:       static.NewLayer(s.Payload, osimage.MediaTypeSimpleSigning),
			Annotations: map[string]string{osimage.AnnotationSignature: b64(s.Sig)},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return img
}

// TestFetchSignatures reads a signature from the registry's sha256-HEX.sig
// tag and verifies it; an image without that tag has none.
func TestFetchSignatures(t *testing.T) {
	host, _ := authRegistry(t)
	img, _ := random.Image(64, 1)
	d := push(t, host+"/rosos/os:2", img)
	priv, pub, _ := osimage.GenerateKey()
	k, _ := osimage.ParsePrivateKey(priv)
	pl := osimage.Payload(host+"/rosos/os", d.String())
	sig, _ := osimage.Sign(k, pl)
	push(t, host+"/rosos/os:"+osimage.SignatureTag(d.String()), signatureImage(t, osimage.Signature{Payload: pl, Sig: sig}))

	creds := func(string) (string, string, error) { return "bob", "secret", nil }
	r := NewResolver(true, creds)
	sigs, err := FetchSignatures(context.Background(), r, host+"/rosos/os:2", d.String())
	if err != nil || len(sigs) != 1 {
		t.Fatalf("fetch: %d signatures, %v", len(sigs), err)
	}
	if err := osimage.VerifySignatures([]string{string(pub)}, []string{d.String()}, sigs); err != nil {
		t.Errorf("verify: %v", err)
	}
	other, _ := random.Image(64, 1)
	od := push(t, host+"/rosos/os:3", other)
	sigs, err = FetchSignatures(context.Background(), r, host+"/rosos/os:3", od.String())
	if err != nil || len(sigs) != 0 {
		t.Errorf("an unsigned image: %d signatures, %v", len(sigs), err)
	}
	if err := osimage.VerifySignatures([]string{string(pub)}, []string{od.String()}, sigs); err == nil || !strings.Contains(err.Error(), "not signed") {
		t.Errorf("an unsigned image verified: %v", err)
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
