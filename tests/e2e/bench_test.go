//go:build e2e && bench

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// A benchmark, not a test: `make bench` runs it. It boots the OS image and
// the Debian reference image (build/debian-ref.sh) in turn, with the same
// QEMU settings, and reports; nothing here passes or fails on speed.

type sample struct {
	SSH, Docker, MemMiB, PID1RSSMiB float64
}

type figure struct {
	Median, Min, Max float64
	Samples          []float64
}

func summarize(xs []float64) figure {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	f := figure{Samples: xs}
	if len(s) == 0 {
		return f
	}
	f.Min, f.Max = s[0], s[len(s)-1]
	if len(s)%2 == 1 {
		f.Median = s[len(s)/2]
	} else {
		f.Median = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return f
}

func benchKey(t *testing.T, path string) Key {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("bench key: %v (make bench writes it)", err)
	}
	signer, err := ssh.ParsePrivateKey(b)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := os.ReadFile(path + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return Key{Signer: signer, Authorized: strings.TrimSpace(string(pub))}
}

func measure(t *testing.T, m *Machine, key Key, upCmd string, up func(string) bool) sample {
	start := time.Now()
	m.Boot()
	s := m.SSH("rancher", key, 15*time.Minute)
	var r sample
	r.SSH = time.Since(start).Seconds()
	s.Eventually("docker info --format '{{.ServerVersion}}'", 10*time.Minute, func(out string) bool {
		return strings.TrimSpace(out) != "" && !strings.Contains(out, "Cannot connect") && !strings.Contains(out, "rror")
	})
	r.Docker = time.Since(start).Seconds()
	s.Eventually(upCmd, 10*time.Minute, up)
	time.Sleep(10 * time.Second) // let the last service settle
	out := s.MustRun(`awk '/MemTotal/{t=$2} /MemAvailable/{a=$2} END{print (t-a)/1024}' /proc/meminfo; sudo awk '/VmRSS/{print $2/1024}' /proc/1/status 2>/dev/null`)
	f := strings.Fields(out)
	if len(f) >= 2 {
		r.MemMiB, _ = strconv.ParseFloat(f[0], 64)
		r.PID1RSSMiB, _ = strconv.ParseFloat(f[1], 64)
	}
	m.Kill()
	return r
}

func fileMiB(p string, apparent bool) float64 {
	fi, err := os.Stat(p)
	if err != nil {
		return 0
	}
	if apparent {
		return float64(fi.Size()) / (1 << 20)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return float64(st.Blocks*512) / (1 << 20)
	}
	return float64(fi.Size()) / (1 << 20)
}

func TestBench(t *testing.T) {
	dir := os.Getenv("ROS_BENCH_DIR")
	if dir == "" {
		t.Fatal("ROS_BENCH_DIR is not set: run `make bench`")
	}
	runs := 3
	if n, err := strconv.Atoi(os.Getenv("ROS_BENCH_RUNS")); err == nil && n > 0 {
		runs = n
	}
	key := benchKey(t, filepath.Join(dir, "key"))
	debImg := filepath.Join(dir, "debian.img")
	seed := SeedConfig(key, "")
	var ours, deb []sample
	// Each boot is a subtest: one that hangs (TCG can stall a guest) is
	// reported and left out of the figures instead of ending the run.
	boot := func(name string, f func(t *testing.T) sample) (sample, bool) {
		var r sample
		ok := t.Run(name, func(t *testing.T) { r = f(t) })
		t.Logf("%s: %+v (ok %v)", name, r, ok)
		return r, ok
	}
	for i := 0; i < runs; i++ {
		if r, ok := boot(fmt.Sprintf("rosos-%d", i+1), func(t *testing.T) sample {
			m := New(t, Options{UserData: seed, MetaData: "instance-id: bench\nlocal-hostname: bench\n"})
			return measure(t, m, key, "sudo ros service list -o json 2>/dev/null", func(out string) bool {
				for _, n := range defaultServices {
					if !strings.Contains(out, `"name": "`+n+`"`) {
						return false
					}
				}
				return strings.Count(out, `"state": "running"`) >= len(defaultServices)
			})
		}); ok {
			ours = append(ours, r)
		}
		if r, ok := boot(fmt.Sprintf("debian-%d", i+1), func(t *testing.T) sample {
			d := New(t, Options{Image: debImg})
			return measure(t, d, key, "sudo systemctl is-system-running --wait 2>/dev/null", func(out string) bool {
				o := strings.TrimSpace(out)
				return o == "running" || o == "degraded"
			})
		}); ok {
			deb = append(deb, r)
		}
	}
	// A Kubernetes server (the kubernetes service from cloud-config):
	// QEMU start to node Ready, and the node's memory in use once Ready.
	var kubeReadyS, kubeMem []float64
	for i := 0; i < runs; i++ {
		boot(fmt.Sprintf("kubernetes-%d", i+1), func(t *testing.T) sample {
			m := New(t, Options{MemoryMB: 4096, DiskGiB: 10, UserData: SeedConfig(key, "rancher:\n  services_include:\n    kubernetes: true\n")})
			start := time.Now()
			m.Boot()
			s := m.SSH("rancher", key, 15*time.Minute)
			s.Eventually("sudo kubectl get nodes --no-headers 2>&1", kubeReady, func(o string) bool { return strings.Contains(o, " Ready ") })
			kubeReadyS = append(kubeReadyS, time.Since(start).Seconds())
			time.Sleep(30 * time.Second) // CoreDNS and the controllers settle
			out := s.MustRun(`awk '/MemTotal/{t=$2} /MemAvailable/{a=$2} END{print (t-a)/1024}' /proc/meminfo`)
			if v, err := strconv.ParseFloat(strings.TrimSpace(out), 64); err == nil {
				kubeMem = append(kubeMem, v)
			}
			m.Kill()
			return sample{}
		})
	}
	col := func(ss []sample, f func(sample) float64) []float64 {
		var out []float64
		for _, s := range ss {
			out = append(out, f(s))
		}
		return out
	}
	type row struct {
		Name         string `json:"name"`
		Unit         string `json:"unit"`
		Ours, Debian figure
		Ratio        float64 `json:"ratio"`
	}
	var rows []row
	add := func(name, unit string, o, d []float64) {
		r := row{Name: name, Unit: unit, Ours: summarize(o), Debian: summarize(d)}
		if r.Debian.Median != 0 {
			r.Ratio = r.Ours.Median / r.Debian.Median
		}
		rows = append(rows, r)
	}
	add("ssh login", "s", col(ours, func(s sample) float64 { return s.SSH }), col(deb, func(s sample) float64 { return s.SSH }))
	add("docker info", "s", col(ours, func(s sample) float64 { return s.Docker }), col(deb, func(s sample) float64 { return s.Docker }))
	add("memory in use", "MiB", col(ours, func(s sample) float64 { return s.MemMiB }), col(deb, func(s sample) float64 { return s.MemMiB }))
	add("PID 1 RSS", "MiB", col(ours, func(s sample) float64 { return s.PID1RSSMiB }), col(deb, func(s sample) float64 { return s.PID1RSSMiB }))
	add("kubernetes: node Ready from QEMU start", "s", kubeReadyS, nil)
	add("kubernetes: server memory in use", "MiB", kubeMem, nil)
	img := Image(t)
	outDir := filepath.Dir(img)
	add("root image (squashfs, zstd)", "MiB", []float64{fileMiB(filepath.Join(outDir, "slot-A.squashfs"), true)}, []float64{fileMiB(filepath.Join(dir, "debian-root.squashfs"), true)})
	add("disk image (allocated)", "MiB", []float64{fileMiB(img, false)}, []float64{fileMiB(debImg, false)})

	var b strings.Builder
	fmt.Fprintf(&b, "%d boots of each, alternating; QEMU TCG, 2 vCPUs, 2048 MiB, OVMF, virtio; median [min-max]\n", runs)
	fmt.Fprintf(&b, "%-28s %22s %22s %8s\n", "figure", "rosos", "debian+systemd", "ratio")
	for _, r := range rows {
		fmt.Fprintf(&b, "%-28s %22s %22s %8.2f\n", r.Name+" ("+r.Unit+")", cell(r.Ours), cell(r.Debian), r.Ratio)
	}
	fmt.Print(b.String())
	if err := os.WriteFile(filepath.Join(outDir, "bench.txt"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	js, _ := json.MarshalIndent(map[string]any{"runs": runs, "date": time.Now().UTC().Format(time.RFC3339), "figures": rows}, "", "  ")
	if err := os.WriteFile(filepath.Join(outDir, "bench.json"), js, 0o644); err != nil {
		t.Fatal(err)
	}
}

func cell(f figure) string {
	if len(f.Samples) == 0 {
		return "-"
	}
	if f.Min == f.Max {
		return fmt.Sprintf("%.1f", f.Median)
	}
	return fmt.Sprintf("%.1f [%.1f-%.1f]", f.Median, f.Min, f.Max)
}
