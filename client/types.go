package client

import (
	"time"

	"github.com/rosos/ros/config"
)

// Service is one service as the service manager sees it.
type Service struct {
	Name     string    `json:"name"`
	Image    string    `json:"image"`
	Source   string    `json:"source"` // built-in, catalog, file, url
	Status   string    `json:"state"`  // starting, running, restarting, exited, failed, stopped, created, removed
	Health   string    `json:"health,omitempty"`
	Pid      uint32    `json:"pid,omitempty"`
	Restarts int       `json:"restarts"`
	Since    time.Time `json:"since,omitzero"`
	ExitCode uint32    `json:"exit_code,omitempty"`
	LastErr  string    `json:"last_error,omitempty"`
}

// ServiceList is GET /v1/services.
type ServiceList struct {
	Services []Service `json:"services"`
	// Catalog lists the catalog's services that are not enabled.
	Catalog []string `json:"catalog"`
}

// EnableRequest is POST /v1/enable.
type EnableRequest struct {
	Ref     string `json:"ref"`               // catalog name, URL, or the file's path (for messages)
	Name    string `json:"name,omitempty"`    // the name to enable it as (default: from ref)
	Content []byte `json:"content,omitempty"` // a local file's content, read by the client
}

// Enabled is the reply to enable and disable: the name the compose file is
// enabled as, and the services it started or stopped.
type Enabled struct {
	Enabled  string   `json:"enabled,omitempty"`
	Disabled string   `json:"disabled,omitempty"`
	Services []string `json:"services"`
}

// ConfigValue is GET /v1/config/key.
type ConfigValue struct {
	Value any  `json:"value"`
	Set   bool `json:"set"`
}

// ReconfigureRequest is a change to the user's config (POST /v1/config):
// set one key, or merge a document.
type ReconfigureRequest struct {
	Key    string `json:"key,omitempty"`
	Value  string `json:"value,omitempty"` // YAML
	Unset  bool   `json:"unset,omitempty"`
	Doc    string `json:"doc,omitempty"` // a document to merge (YAML)
	DryRun bool   `json:"dry_run,omitempty"`
}

// Plan is what a change of the config does.
type Plan struct {
	Changes []config.Change `json:"changes"`
	// Live are the changed keys applied without a reboot; Reboot those
	// that take effect at the next boot.
	Live   []string `json:"live,omitempty"`
	Reboot []string `json:"reboot,omitempty"`
	// Restart are the services restarted (or, dry run, that would be);
	// Start and Stop those started and stopped.
	Restart []string `json:"restart,omitempty"`
	Start   []string `json:"start,omitempty"`
	Stop    []string `json:"stop,omitempty"`
	// Overridden are set keys whose value a later layer (the kernel
	// command line) decides.
	Overridden []string `json:"overridden,omitempty"`
	DryRun     bool     `json:"dry_run,omitempty"`
}

// Slot is one slot, for `ros os list`.
type Slot struct {
	Slot    string `json:"slot"`
	Present bool   `json:"present"`
	Format  string `json:"format,omitempty"` // squashfs or directory
	Version string `json:"version,omitempty"`
	Running bool   `json:"running"`
	Active  bool   `json:"active"` // booted by default: the last marked good
	Next    bool   `json:"next"`   // tried at the next boot
	Good    bool   `json:"good"`   // a boot of it was marked good
	Tries   int    `json:"tries"`
	Failed  bool   `json:"failed"` // the last slot whose tries ran out
}

// UpgradeRequest is POST /v1/os/upgrade.
type UpgradeRequest struct {
	File      string `json:"file,omitempty"`  // an OCI image archive: a file or a block device
	Image     string `json:"image,omitempty"` // or an image in a registry, pulled through system containerd
	PlainHTTP bool   `json:"plain_http,omitempty"`
	Force     bool   `json:"force,omitempty"`
	NoReboot  bool   `json:"no_reboot,omitempty"`
}

// RollbackRequest is POST /v1/os/rollback.
type RollbackRequest struct {
	NoReboot bool `json:"no_reboot,omitempty"`
}

// InstallRequest is POST /v1/install.
type InstallRequest struct {
	Device      string `json:"device"`
	CloudConfig []byte `json:"cloud_config,omitempty"` // a #cloud-config document, checked first
	Force       bool   `json:"force,omitempty"`
	NoReboot    bool   `json:"no_reboot,omitempty"`
}

// Result is the last line of a streamed operation (upgrade, install) and
// the reply of a short one: "ok" with what was done, or "error".
type Result struct {
	OK    string `json:"ok,omitempty"`
	Error string `json:"error,omitempty"`
}
