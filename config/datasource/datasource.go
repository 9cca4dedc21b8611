// Package datasource reads cloud-config from where a cloud or a user puts
// it: a NoCloud seed (cidata), an OpenStack ConfigDrive (config-2), a file,
// a URL, and the EC2-compatible and OpenStack metadata services. Each
// source gives its user data (a #cloud-config document or a #! script,
// possibly gzipped) and its metadata (instance ID, host name, SSH keys).
package datasource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
	"golang.org/x/sys/unix"

	"github.com/rosos/ros/config"
	"github.com/rosos/ros/system/blockdev"
	"github.com/rosos/ros/system/mount"
)

// Result is what one datasource gave.
type Result struct {
	Source     string // nocloud, configdrive, ec2, ...
	InstanceID string
	Hostname   string
	Keys       []string
	UserData   config.UserData
}

// Layer is the result as a config layer: the user data's document, with the
// metadata's host name when the document sets none and its keys added to
// the document's.
func (r Result) Layer() config.Layer {
	l := config.Layer{Name: r.Source, Doc: map[string]any{}}
	if r.UserData.Config != nil {
		l.Doc = config.Copy(r.UserData.Config.Doc)
	}
	if _, set := l.Doc["hostname"]; !set && r.Hostname != "" {
		l.Doc["hostname"] = r.Hostname
	}
	if len(r.Keys) > 0 {
		var keys []any
		if have, ok := l.Doc["ssh_authorized_keys"].([]any); ok {
			keys = append(keys, have...)
		}
		for _, k := range r.Keys {
			keys = append(keys, k)
		}
		l.Doc["ssh_authorized_keys"] = keys
	}
	return l
}

// Source is one configured datasource.
type Source struct {
	Kind    string // nocloud, configdrive, file, url, ec2, openstack
	Arg     string // the path or URL, if any
	Network bool   // needs the network
}

func (s Source) String() string {
	if s.Arg == "" {
		return s.Kind
	}
	return s.Kind + ":" + s.Arg
}

// Default is the datasources tried when rancher.cloud_init.datasources is
// not set: the local ones, which cost nothing when absent.
var Default = []string{"nocloud", "configdrive"}

// MetadataAddr is the metadata services' address.
const MetadataAddr = "http://169.254.169.254"

// ParseSources reads rancher.cloud_init.datasources.
func ParseSources(names []string) ([]Source, error) {
	var out []Source
	for _, n := range names {
		kind, arg, _ := strings.Cut(n, ":")
		switch kind {
		case "nocloud", "configdrive":
			out = append(out, Source{Kind: kind, Arg: arg})
		case "cmdline":
			// cloud-config-url= on the kernel command line: the caller adds
			// it as a url source when it is there.
		case "file":
			if !filepath.IsAbs(arg) {
				return nil, fmt.Errorf("rancher.cloud_init.datasources: %q: want file:/absolute/path", n)
			}
			out = append(out, Source{Kind: kind, Arg: arg})
		case "url":
			if !strings.HasPrefix(arg, "http://") && !strings.HasPrefix(arg, "https://") {
				return nil, fmt.Errorf("rancher.cloud_init.datasources: %q: want url:http://HOST/PATH or url:https://HOST/PATH", n)
			}
			out = append(out, Source{Kind: kind, Arg: arg, Network: true})
		case "http", "https":
			out = append(out, Source{Kind: "url", Arg: n, Network: true})
		case "ec2", "openstack":
			base := MetadataAddr
			if arg != "" {
				base = arg
			}
			out = append(out, Source{Kind: kind, Arg: strings.TrimSuffix(base, "/"), Network: true})
		default:
			return nil, fmt.Errorf("rancher.cloud_init.datasources: %q: unknown datasource (known: nocloud, configdrive, cmdline, file:PATH, url:URL, ec2, openstack)", n)
		}
	}
	return out, nil
}

// Reader reads datasources.
type Reader struct {
	SysBlock, DevDir string // /sys/class/block, /dev
	MountDir         string // where seeds are mounted to be read
	HTTP             *http.Client
	// Wait bounds how long a network datasource waits for the network
	// (and its server) before it gives up.
	Wait time.Duration
}

// ErrAbsent means the datasource is not there (no seed disk): not an error
// to report.
var ErrAbsent = errors.New("not present")

// Read reads one datasource.
func (r *Reader) Read(ctx context.Context, s Source) (Result, error) {
	switch s.Kind {
	case "nocloud":
		return r.disk(ctx, s, "cidata", readNoCloud)
	case "configdrive":
		return r.disk(ctx, s, "config-2", readConfigDrive)
	case "file":
		b, err := os.ReadFile(s.Arg)
		if os.IsNotExist(err) {
			return Result{}, ErrAbsent
		}
		if err != nil {
			return Result{}, err
		}
		ud, err := config.ParseUserData(s.String(), b)
		return Result{Source: s.String(), UserData: ud}, err
	case "url":
		b, err := r.get(ctx, s.Arg, false)
		if err != nil {
			return Result{}, err
		}
		ud, err := config.ParseUserData(s.String(), b)
		return Result{Source: s.String(), UserData: ud}, err
	case "ec2":
		return r.ec2(ctx, s)
	case "openstack":
		return r.openstack(ctx, s)
	}
	return Result{}, fmt.Errorf("unknown datasource %q", s.Kind)
}

// disk reads a seed file system found by its label: the directory of
// s.Arg if given (a seed already mounted), else the labelled device,
// mounted read-only for the read.
func (r *Reader) disk(_ context.Context, s Source, label string, read func(dir, name string) (Result, error)) (Result, error) {
	if s.Arg != "" {
		if _, err := os.Stat(s.Arg); err != nil {
			return Result{}, ErrAbsent
		}
		return read(s.Arg, s.Kind)
	}
	devs, err := blockdev.List(r.SysBlock, r.DevDir)
	if err != nil {
		return Result{}, err
	}
	dev, err := blockdev.FindLabel(devs, label)
	if err != nil {
		if strings.Contains(err.Error(), "no block device") {
			return Result{}, ErrAbsent
		}
		return Result{}, err
	}
	dir := filepath.Join(r.MountDir, s.Kind)
	if err := mount.Mount(dev.Path, dir, dev.Type, unix.MS_RDONLY|unix.MS_NODEV|unix.MS_NOSUID|unix.MS_NOEXEC, ""); err != nil {
		return Result{}, fmt.Errorf("%s: %w", dev.Path, err)
	}
	defer func() { _ = unix.Unmount(dir, 0) }() // read-only; a busy mount goes at the next boot
	res, err := read(dir, s.Kind+" ("+dev.Path+")")
	res.Source = s.Kind
	return res, err
}

// readNoCloud reads a NoCloud seed: user-data and meta-data (YAML with
// instance-id and local-hostname; public-keys too, as some tools write).
func readNoCloud(dir, name string) (Result, error) {
	res := Result{Source: "nocloud"}
	if md, err := os.ReadFile(filepath.Join(dir, "meta-data")); err == nil {
		var meta struct {
			InstanceID    string `yaml:"instance-id"`
			LocalHostname string `yaml:"local-hostname"`
			PublicKeys    any    `yaml:"public-keys"`
		}
		if err := yaml.Unmarshal(md, &meta); err != nil {
			return Result{}, fmt.Errorf("%s: meta-data: not valid YAML: %s", name, strings.TrimPrefix(err.Error(), "yaml: "))
		}
		res.InstanceID, res.Hostname, res.Keys = meta.InstanceID, meta.LocalHostname, keyList(meta.PublicKeys)
	}
	ud, err := os.ReadFile(filepath.Join(dir, "user-data"))
	if err != nil && !os.IsNotExist(err) {
		return Result{}, fmt.Errorf("%s: %w", name, err)
	}
	if res.UserData, err = config.ParseUserData(name+" user-data", ud); err != nil {
		return Result{}, err
	}
	return res, nil
}

// openstackMeta is OpenStack's meta_data.json (ConfigDrive and the
// metadata service).
type openstackMeta struct {
	UUID       string            `json:"uuid"`
	Hostname   string            `json:"hostname"`
	Name       string            `json:"name"`
	PublicKeys map[string]string `json:"public_keys"`
}

func (m openstackMeta) result(source string) Result {
	res := Result{Source: source, InstanceID: m.UUID, Hostname: m.Hostname}
	if res.Hostname == "" {
		res.Hostname = m.Name
	}
	names := make([]string, 0, len(m.PublicKeys))
	for n := range m.PublicKeys {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		res.Keys = append(res.Keys, strings.TrimSpace(m.PublicKeys[n]))
	}
	return res
}

// readConfigDrive reads an OpenStack ConfigDrive:
// openstack/latest/{meta_data.json,user_data}.
func readConfigDrive(dir, name string) (Result, error) {
	var meta openstackMeta
	if b, err := os.ReadFile(filepath.Join(dir, "openstack/latest/meta_data.json")); err == nil {
		if err := json.Unmarshal(b, &meta); err != nil {
			return Result{}, fmt.Errorf("%s: meta_data.json: %w", name, err)
		}
	}
	res := meta.result("configdrive")
	ud, err := os.ReadFile(filepath.Join(dir, "openstack/latest/user_data"))
	if err != nil && !os.IsNotExist(err) {
		return Result{}, fmt.Errorf("%s: %w", name, err)
	}
	if res.UserData, err = config.ParseUserData(name+" user_data", ud); err != nil {
		return Result{}, err
	}
	return res, nil
}

// keyList reads public keys given as a string, a list or a map.
func keyList(v any) []string {
	var out []string
	switch x := v.(type) {
	case string:
		for _, l := range strings.Split(x, "\n") {
			if l = strings.TrimSpace(l); l != "" {
				out = append(out, l)
			}
		}
	case []any:
		for _, e := range x {
			out = append(out, keyList(e)...)
		}
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(x)) {
			out = append(out, keyList(x[k])...)
		}
	}
	return out
}

// errNotFound is a 404: the server is there and has no such document.
var errNotFound = errors.New("not found")

// get fetches url, retrying until r.Wait passes while the network or the
// server is not there yet. With optional, a 404 is errNotFound.
func (r *Reader) get(ctx context.Context, url string, optional bool) ([]byte, error) {
	client := r.HTTP
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	wait := r.Wait
	if wait == 0 {
		wait = time.Minute
	}
	deadline := time.Now().Add(wait)
	delay := 500 * time.Millisecond
	for {
		b, err := fetch(ctx, client, url)
		if err == nil || errors.Is(err, errNotFound) && optional {
			return b, err
		}
		if errors.Is(err, errNotFound) || time.Now().Add(delay).After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("%s: %w (waited up to %s)", url, err, wait)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(delay):
		}
		delay = min(delay*2, 5*time.Second)
	}
}

func fetch(ctx context.Context, client *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil, errNotFound
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %s", resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20+1))
	if err != nil {
		return nil, err
	}
	return b, nil
}

// ec2 reads the EC2-compatible metadata service: instance-id,
// local-hostname (or hostname), public-keys and user-data.
func (r *Reader) ec2(ctx context.Context, s Source) (Result, error) {
	base := s.Arg + "/latest"
	res := Result{Source: "ec2"}
	id, err := r.get(ctx, base+"/meta-data/instance-id", false)
	if err != nil {
		return Result{}, err
	}
	res.InstanceID = strings.TrimSpace(string(id))
	for _, k := range []string{"local-hostname", "hostname"} {
		if b, err := r.get(ctx, base+"/meta-data/"+k, true); err == nil && len(b) > 0 {
			res.Hostname = strings.TrimSpace(string(b))
			break
		}
	}
	if b, err := r.get(ctx, base+"/meta-data/public-keys/", true); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			idx, _, _ := strings.Cut(strings.TrimSpace(l), "=")
			if idx == "" {
				continue
			}
			k, err := r.get(ctx, base+"/meta-data/public-keys/"+idx+"/openssh-key", true)
			if err == nil {
				res.Keys = append(res.Keys, keyList(string(k))...)
			}
		}
	}
	ud, err := r.get(ctx, base+"/user-data", true)
	if err != nil && !errors.Is(err, errNotFound) {
		return Result{}, err
	}
	if res.UserData, err = config.ParseUserData("ec2 user-data", ud); err != nil {
		return Result{}, err
	}
	return res, nil
}

// openstack reads the OpenStack metadata service: meta_data.json and
// user_data under /openstack/latest.
func (r *Reader) openstack(ctx context.Context, s Source) (Result, error) {
	base := s.Arg + "/openstack/latest"
	b, err := r.get(ctx, base+"/meta_data.json", false)
	if err != nil {
		return Result{}, err
	}
	var meta openstackMeta
	if err := json.Unmarshal(b, &meta); err != nil {
		return Result{}, fmt.Errorf("openstack meta_data.json: %w", err)
	}
	res := meta.result("openstack")
	ud, err := r.get(ctx, base+"/user_data", true)
	if err != nil && !errors.Is(err, errNotFound) {
		return Result{}, err
	}
	if res.UserData, err = config.ParseUserData("openstack user_data", ud); err != nil {
		return Result{}, err
	}
	return res, nil
}
