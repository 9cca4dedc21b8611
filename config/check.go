package config

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sort"
	"strings"
)

// Check checks a document against the Config types and returns every
// problem, each naming its key path (rancher.network.interfaces.eth0.mtu)
// and what is wrong. An unknown key is a problem: a misspelt key silently
// ignored would run something other than what the user configured.
func Check(doc map[string]any) error {
	var errs []string
	check(reflect.TypeOf(Config{}), doc, "", &errs)
	if len(errs) == 0 {
		return nil
	}
	sort.Strings(errs)
	return &CheckError{Problems: errs}
}

// CheckError lists the problems of a document.
type CheckError struct{ Problems []string }

func (e *CheckError) Error() string { return strings.Join(e.Problems, "; ") }

var (
	typeFileMode = reflect.TypeOf(FileMode(0))
	typeCommand  = reflect.TypeOf(Command{})
)

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func describe(v any) string {
	switch x := v.(type) {
	case map[string]any:
		return "a map"
	case []any:
		return "a list"
	case string:
		if len(x) > 40 {
			x = x[:40] + "..."
		}
		return fmt.Sprintf("%q", x)
	default:
		return fmt.Sprintf("%v", v)
	}
}

func scalar(v any) bool {
	switch v.(type) {
	case map[string]any, []any:
		return false
	}
	return true
}

// checkMode checks a file mode: a number or an octal string.
func checkMode(v any, bad func(want string)) {
	switch x := v.(type) {
	case int:
		if x < 0 || x > 0o7777 {
			bad("a mode from 0 to 07777")
		}
	case string:
		if _, err := ParseMode(x); err != nil {
			bad(`an octal mode such as "0644"`)
		}
	default:
		bad(`an octal string such as "0644" or a number`)
	}
}

// checkCommand checks a command: a string, or a list of strings.
func checkCommand(v any, path string, errs *[]string, bad func(want string)) {
	switch x := v.(type) {
	case []any:
		for i, a := range x {
			if !scalar(a) || a == nil {
				*errs = append(*errs, fmt.Sprintf("%s[%d]: want a string, got %s", path, i, describe(a)))
			}
		}
	default:
		if !scalar(v) {
			bad("a command (a string or a list of strings)")
		}
	}
}

func check(t reflect.Type, v any, path string, errs *[]string) {
	if v == nil {
		return
	}
	bad := func(want string) { *errs = append(*errs, fmt.Sprintf("%s: want %s, got %s", path, want, describe(v))) }
	switch t {
	case typeFileMode:
		checkMode(v, bad)
		return
	case typeCommand:
		checkCommand(v, path, errs, bad)
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			bad("a map")
			return
		}
		fields := map[string]reflect.StructField{}
		for i := 0; i < t.NumField(); i++ {
			if name := yamlName(t.Field(i)); name != "" {
				fields[name] = t.Field(i)
			}
		}
		for k, x := range m {
			f, ok := fields[k]
			if !ok {
				if why, v1 := v1Unsupported[join(path, k)]; v1 {
					*errs = append(*errs, fmt.Sprintf("%s: a RancherOS v1 key this OS does not support: %s", join(path, k), why))
					continue
				}
				*errs = append(*errs, fmt.Sprintf("%s: unknown key (known here: %s)", join(path, k), strings.Join(slices.Sorted(maps.Keys(fields)), ", ")))
				continue
			}
			check(f.Type, x, join(path, k), errs)
		}
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			bad("a map")
			return
		}
		for k, x := range m {
			check(t.Elem(), x, join(path, k), errs)
		}
	case reflect.Slice:
		l, ok := v.([]any)
		if !ok {
			bad("a list")
			return
		}
		for i, x := range l {
			check(t.Elem(), x, fmt.Sprintf("%s[%d]", path, i), errs)
		}
	case reflect.String:
		if !scalar(v) {
			bad("a string")
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			bad("true or false")
		}
	case reflect.Int:
		if _, ok := v.(int); !ok {
			bad("a whole number")
		}
	case reflect.Interface:
		// anything: rancher.services entries are checked by the compose parser
	default:
		bad(t.String())
	}
}

func yamlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "-" {
		return ""
	}
	return name
}

// Schema is the JSON schema of a cloud-config document, generated from the
// Config types (the same rules Check applies).
func Schema() ([]byte, error) {
	s := schemaOf(reflect.TypeOf(Config{}))
	s["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	s["$id"] = "https://github.com/rosos/ros/docs/config.schema.json"
	s["title"] = "rosos cloud-config"
	return json.MarshalIndent(s, "", "  ")
}

func schemaOf(t reflect.Type) map[string]any {
	switch t {
	case typeFileMode:
		return map[string]any{"oneOf": []any{
			map[string]any{"type": "string", "pattern": "^(0o)?[0-7]{1,4}$"},
			map[string]any{"type": "integer", "minimum": 0, "maximum": 0o7777},
		}}
	case typeCommand:
		return map[string]any{"oneOf": []any{
			map[string]any{"type": []string{"string", "null"}},
			map[string]any{"type": "array", "items": map[string]any{"type": []string{"string", "number", "boolean"}}},
		}}
	}
	switch t.Kind() {
	case reflect.Struct:
		props := map[string]any{}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name := yamlName(f)
			if name == "" {
				continue
			}
			p := schemaOf(f.Type)
			if d := f.Tag.Get("doc"); d != "" {
				p["description"] = d
			}
			if e := f.Tag.Get("enum"); e != "" {
				p["enum"] = strings.Split(e, ",")
			}
			props[name] = p
		}
		return map[string]any{"type": []string{"object", "null"}, "properties": props, "additionalProperties": false}
	case reflect.Map:
		return map[string]any{"type": []string{"object", "null"}, "additionalProperties": schemaOf(t.Elem())}
	case reflect.Slice:
		return map[string]any{"type": []string{"array", "null"}, "items": schemaOf(t.Elem())}
	case reflect.String:
		return map[string]any{"type": []string{"string", "number", "boolean", "null"}}
	case reflect.Bool:
		return map[string]any{"type": []string{"boolean", "null"}}
	case reflect.Int:
		return map[string]any{"type": []string{"integer", "null"}}
	}
	return map[string]any{}
}

// v1Unsupported names the keys of RancherOS v1 that this OS refuses, and
// why, so that a v1 user's cloud-config gets an answer and not just
// "unknown key". docs/configuration.md lists them too.
var v1Unsupported = map[string]string{
	"rancher.system_docker":          "there is no system Docker: system services run in system containerd, configured under rancher.services",
	"rancher.bootstrap_docker":       "there is no bootstrap Docker: PID 1 starts system containerd itself",
	"rancher.bootstrap_containers":   "there is no bootstrap stage of containers: use bootcmd, which runs early on every boot",
	"rancher.repositories":           "services come from the image or from compose files (ros service enable FILE), not from repositories",
	"rancher.defaults":               "the image's os-config.yml is the defaults layer",
	"rancher.disable":                "turn a service off with ros service disable NAME",
	"rancher.rm_usr":                 "the root is a read-only image; there is nothing to remove",
	"rancher.no_sharedroot":          "the root is a read-only image shared by no container",
	"rancher.force_console_rebuild":  "the console's container is made anew from its image at every boot",
	"rancher.recovery":               "recovery is the other slot: ros os rollback, or a broken slot rolls itself back",
	"rancher.resize_device":          "the persistent partition grows to the end of its disk by itself at boot",
	"rancher.hypervisor_service":     "no hypervisor guest-agent images are built",
	"rancher.shutdown_timeout":       "each service has its compose stop_grace_period (10 s if it has none)",
	"rancher.preload_wait":           "system images are preloaded from the image before services start",
	"rancher.password":               "rancher has no password; log in over SSH with a key from ssh_authorized_keys",
	"rancher.autologin":              "no console autologin; log in over SSH",
	"rancher.network.wifi_networks":  "the image has no Wi-Fi drivers or firmware",
	"rancher.network.modem_networks": "the image has no modem support",
	"rancher.state.mdadm_scan":       "the state partition is found by its label; RAID is not assembled",
	"rancher.state.lvm_scan":         "the state partition is found by its label; LVM is not scanned",
	"rancher.state.cryptsetup":       "encrypted state partitions are not supported yet",
	"rancher.state.rngd":             "not needed: the kernel's random pool is used",
	"rancher.state.wait":             "the state partition is waited for by label, always",
	"rancher.state.required":         "the state partition is always required",
	"rancher.state.boot_dev":         "the ESP is found by its label, RANCHER_EFI",
	"rancher.state.boot_fstype":      "the ESP is FAT, found by its label, RANCHER_EFI",
	"rancher.state.oem_dev":          "the OEM partition is found by its label, RANCHER_OEM",
	"rancher.state.oem_fstype":       "the OEM partition is found by its label, RANCHER_OEM",
}

// Keys lists the key paths of a cloud-config document that have a fixed
// name (rancher.network.dns.nameservers), in order: for completion. Map keys
// the user names (rancher.services.NAME) end the path.
func Keys() []string {
	var out []string
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		if t.Kind() != reflect.Struct || t == typeFileMode || t == typeCommand {
			return
		}
		for i := 0; i < t.NumField(); i++ {
			name := yamlName(t.Field(i))
			if name == "" {
				continue
			}
			k := join(prefix, name)
			out = append(out, k)
			walk(t.Field(i).Type, k)
		}
	}
	walk(reflect.TypeOf(Config{}), "")
	sort.Strings(out)
	return out
}
