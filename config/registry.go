package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// RegistryAuthsKey is the key of registry credentials: kept in the
// root-only config files, never exported, never shown in a change's plan.
const RegistryAuthsKey = "rancher.registry_auths"

// Credentials are the user name and password of a.
func (a RegistryAuth) Credentials() (user, password string, err error) {
	if a.Auth != "" {
		if a.Username != "" || a.Password != "" {
			return "", "", errors.New("give auth or username and password, not both")
		}
		b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(a.Auth))
		if err != nil {
			return "", "", errors.New("auth: not base64 (want base64 of username:password)")
		}
		u, p, ok := strings.Cut(string(b), ":")
		if !ok || u == "" {
			return "", "", errors.New("auth: want base64 of username:password")
		}
		return u, p, nil
	}
	if a.Username == "" {
		return "", "", errors.New("no credentials: give auth, or username and password")
	}
	return a.Username, a.Password, nil
}

// dockerHub are the names Docker Hub goes by; pulls go to the last.
var dockerHub = []string{"docker.io", "index.docker.io", "registry-1.docker.io"}

// RegistryHost is the registry host a key of rancher.registry_auths names:
// v1 and Docker's config.json write URLs (https://index.docker.io/v1/),
// this takes those and plain hosts. Docker Hub's names are one host,
// registry-1.docker.io, where pulls go.
func RegistryHost(key string) string {
	h := strings.TrimSpace(key)
	for _, p := range []string{"https://", "http://"} {
		h = strings.TrimPrefix(h, p)
	}
	h, _, _ = strings.Cut(h, "/")
	h = strings.ToLower(h)
	if h == "" || strings.ContainsAny(h, " @?#") {
		return ""
	}
	for _, d := range dockerHub {
		if h == d {
			return dockerHub[len(dockerHub)-1]
		}
	}
	return h
}

// RegistryCredentials returns the credentials configured for host (as a
// registry client names it: registry.example.com:5000), or ok false.
func (c Config) RegistryCredentials(host string) (user, password string, ok bool, err error) {
	want := RegistryHost(host)
	for k, a := range c.Rancher.RegistryAuths {
		if RegistryHost(k) == want {
			u, p, err := a.Credentials()
			if err != nil {
				return "", "", false, fmt.Errorf("%s[%s]: %w", RegistryAuthsKey, k, err)
			}
			return u, p, true, nil
		}
	}
	return "", "", false, nil
}
