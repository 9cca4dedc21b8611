package compose

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/rosos/ros/internal/paths"
	"github.com/rosos/ros/services"
)

// ValidName is what a service enabled by name may be called.
var ValidName = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]*$`)

// Source is where an enabled service's compose file comes from.
type Source struct {
	Name    string // the name it is enabled as (services_include key)
	Kind    string // catalog, file, url
	Content []byte
}

// ResolveSource finds the compose document for ref: a catalog name, a URL,
// or (content given) a file the client read.
func ResolveSource(ctx context.Context, ref, name string, content []byte) (Source, error) {
	switch {
	case content != nil:
		if name == "" {
			name = strings.TrimSuffix(filepath.Base(ref), filepath.Ext(ref))
		}
		return Source{Name: name, Kind: "file", Content: content}, nil
	case strings.HasPrefix(ref, "http://") || strings.HasPrefix(ref, "https://"):
		if name == "" {
			name = strings.TrimSuffix(filepath.Base(ref), filepath.Ext(ref))
		}
		b, err := fetch(ctx, ref)
		if err != nil {
			return Source{}, err
		}
		return Source{Name: name, Kind: "url", Content: b}, nil
	}
	b, ok := services.Doc(ref)
	if !ok {
		return Source{}, fmt.Errorf("%q is not a catalog service (%s), a file or a URL", ref, strings.Join(services.Names(), ", "))
	}
	return Source{Name: ref, Kind: "catalog", Content: b}, nil
}

func fetch(ctx context.Context, url string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch %s: %s", url, resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 1<<20))
}

// Included returns the compose document of an enabled service (rancher.services_include.NAME):
// the stored file, or the catalog's; and which of the two ("file", "catalog").
func Included(name string) ([]byte, string, error) {
	if b, err := os.ReadFile(filepath.Join(paths.IncludedDir, name+".yml")); err == nil {
		return b, "file", nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, "", err
	}
	if b, ok := services.Doc(name); ok {
		return b, "catalog", nil
	}
	return nil, "", fmt.Errorf("enabled service %s: no compose file in %s and not in the catalog", name, paths.IncludedDir)
}
