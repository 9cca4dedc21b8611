// Package registry is what the OS needs of image registries: credentials
// from the config, a resolver, pulling an OS image into containerd's content
// store, and the signatures stored beside an image.
package registry

import (
	"context"
	"fmt"
	"io"

	"github.com/containerd/containerd/v2/core/remotes"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/rosos/ros/config"
	"github.com/rosos/ros/system/osimage"
)

// Credentials gives a registry host's user name and password ("" for an
// anonymous pull).
type Credentials func(host string) (user, password string, err error)

// ConfigCredentials are the credentials of rancher.registry_auths in the
// config cfg returns (read at each pull, so a change applies at once).
func ConfigCredentials(cfg func() config.Config) Credentials {
	return func(host string) (string, string, error) {
		u, p, ok, err := cfg().RegistryCredentials(host)
		if err != nil || !ok {
			return "", "", err
		}
		return u, p, nil
	}
}

// NewResolver is how system containerd reaches registries: HTTPS (plain
// HTTP for every host with plainHTTP; containerd's default for localhost),
// with creds for the hosts that have them (basic auth, or the bearer
// tokens a registry hands out for them).
func NewResolver(plainHTTP bool, creds Credentials) remotes.Resolver {
	var authOpts []docker.AuthorizerOpt
	if creds != nil {
		authOpts = append(authOpts, docker.WithAuthCreds(creds))
	}
	opts := []docker.RegistryOpt{docker.WithAuthorizer(docker.NewDockerAuthorizer(authOpts...))}
	if plainHTTP {
		opts = append(opts, docker.WithPlainHTTP(docker.MatchAllHosts))
	}
	return docker.NewResolver(docker.ResolverOptions{Hosts: docker.ConfigureDefaultRegistries(opts...)})
}

// FetchSignatures reads the cosign signatures of the image with digest d
// in the repository of ref (the tag sha256-HEX.sig there); none when the
// tag does not exist.
func FetchSignatures(ctx context.Context, resolver remotes.Resolver, ref, d string) ([]osimage.Signature, error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return nil, err
	}
	sigRef := reference.TrimNamed(named).String() + ":" + osimage.SignatureTag(d)
	name, desc, err := resolver.Resolve(ctx, sigRef)
	if errdefs.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("signature %s: %w", sigRef, err)
	}
	f, err := resolver.Fetcher(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("signature %s: %w", sigRef, err)
	}
	read := func(desc ocispec.Descriptor) ([]byte, error) {
		if desc.Size > 1<<20 {
			return nil, fmt.Errorf("%s: %d bytes: too big for a signature", desc.Digest, desc.Size)
		}
		rc, err := f.Fetch(ctx, desc)
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		b, err := io.ReadAll(io.LimitReader(rc, desc.Size+1))
		if err != nil {
			return nil, err
		}
		if got := digest.FromBytes(b); got != desc.Digest {
			return nil, fmt.Errorf("%s: the registry sent content of digest %s", desc.Digest, got)
		}
		return b, nil
	}
	mb, err := read(desc)
	if err != nil {
		return nil, fmt.Errorf("signature %s: %w", sigRef, err)
	}
	return osimage.ParseSignatureManifest(mb, func(l osimage.Descriptor) ([]byte, error) {
		dg, err := digest.Parse(l.Digest)
		if err != nil {
			return nil, err
		}
		return read(ocispec.Descriptor{MediaType: l.MediaType, Digest: dg, Size: l.Size})
	})
}

// NormalizeRef turns an image name as written in compose (rosos/syslog:v1)
// into the full name containerd stores (docker.io/rosos/syslog:v1).
func NormalizeRef(ref string) (string, error) {
	n, err := reference.ParseDockerRef(ref)
	if err != nil {
		return "", fmt.Errorf("image %q: %w", ref, err)
	}
	return n.String(), nil
}
