// Package paths names every file and directory of the running node that
// more than one part of the OS uses: PID 1, the service manager, the `ros`
// command. A path used by one package alone stays there.
package paths

// The image (read-only, from the slot).
const (
	// ImageConfig is the image's own config layer, the first.
	ImageConfig = "/usr/share/ros/os-config.yml"
	// Runtime is the OCI runtime of the system services' containers: crun,
	// a C program, where runc is Go twice over for each container (its
	// create and its init) under emulation at every boot.
	Runtime = "/usr/bin/crun"
	// ParsedServices holds the parses of the image's own service
	// definitions, made when it was built (compose.LoadKnown).
	ParsedServices = "/usr/share/ros/services.parsed.json"
	// ImagesDir holds the OS image's preloaded service images.
	ImagesDir = "/usr/share/ros/images"
	// ModuleList names the kernel modules PID 1 loads, one a line.
	ModuleList = "/etc/ros/modules"
	// OSRelease carries the OS version (VERSION_ID).
	OSRelease = "/etc/os-release"
)

// System containerd, the services' runtime.
const (
	ContainerdSock  = "/run/system-containerd/containerd.sock"
	ContainerdRoot  = "/var/lib/rancher/system-containerd"
	ContainerdState = "/run/system-containerd"
	// ContainerdNamespace is the namespace of the system services.
	ContainerdNamespace = "system"
	// RootsDir holds the roots of the containers of preloaded images.
	RootsDir = "/run/ros/rootfs"
	// FIFODir holds the FIFOs of `ros service exec`.
	FIFODir = "/run/ros/fifo"
)

// The node's config (on the persistent partition, root only).
const (
	ConfDir = "/var/lib/rancher/conf"
	// UserConfig is what `ros config set` and `ros service enable` write.
	UserConfig = ConfDir + "/cloud-config.yml"
	// CloudConfigDir keeps each datasource's last good document.
	CloudConfigDir = ConfDir + "/cloud-config.d"
	// IncludedDir holds the compose files of services enabled from a file
	// or a URL, by name.
	IncludedDir = ConfDir + "/services"
	// ScriptsDir keeps user-data scripts (#!) from datasources, run once
	// per instance.
	ScriptsDir = ConfDir + "/scripts"
	// MergedConfig is the node's config after the layers are merged, for
	// the services that read it (network); written at each start, without
	// registry credentials.
	MergedConfig = "/run/ros/config.yml"
	// SSHHostKeys is where rancher.ssh.keys are written for the console's
	// sshd.
	SSHHostKeys = "/var/lib/rancher/ssh"
	// SeedDir is where datasources on a disk (NoCloud, ConfigDrive) are
	// mounted while read.
	SeedDir = "/run/ros/seed"
	// OEMDir is where the OEM partition is mounted while read.
	OEMDir = "/run/ros/oem"
)

// The service manager.
const (
	// Socket is the service manager's API, for root only.
	Socket = "/run/ros/ros.sock"
	// SystemLogDir holds each service's output, NAME.log.
	SystemLogDir = "/var/log/system"
	// ConfigLog is where config problems found at boot are written, beside
	// the console.
	ConfigLog = "/var/log/ros-config.log"
	// Timeline is the boot timeline of stage 1, PID 1 and the services.
	Timeline = "/run/ros/boot-timeline.jsonl"
	// ManagerStarted marks (in /run, gone at the next boot) that the
	// service manager started in this boot: a second start adopts.
	ManagerStarted = "/run/ros/service-manager.started"
)

// Slots and the boot environment.
const (
	// StateDir is RANCHER_STATE, mounted read-only by stage 1; an upgrade
	// remounts it writable for the time it writes.
	StateDir = "/run/ros/state"
	// DiskTemplate is the installed disk's image, gzipped, on the live ISO.
	DiskTemplate = StateDir + "/disk.img.gz"
	// PID1ESP is where PID 1 mounts the ESP to mark a boot good, and
	// ManagerESP where the service manager mounts it for an upgrade: both
	// may be mounted at once.
	PID1ESP    = "/run/ros/efi"
	ManagerESP = "/run/ros/efi-os"
	// SlotTries is how many boots a new slot gets before GRUB gives up on
	// it, and how many a good slot's count is reset to.
	SlotTries = 3
)

// The console's login user (as in RancherOS v1).
const (
	RancherUID  = 1100
	RancherHome = "/home/rancher"
)

// LogPath is where a service's output goes.
func LogPath(name string) string { return SystemLogDir + "/" + name + ".log" }
