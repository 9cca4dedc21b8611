//go:build e2e && debug

package e2e

import (
	"bufio"
	"encoding/pem"

	"golang.org/x/crypto/ssh"
	"os"
	"strconv"
	"testing"
	"time"
)

// TestDebug (go test -tags e2e,debug) boots a node and runs the commands written, a line each, to
// the file $ROS_DEBUG_CMDS (polled), printing their output. For
// development only.
func TestDebug(t *testing.T) {
	path := os.Getenv("ROS_DEBUG_CMDS")
	if path == "" {
		t.Fatal("ROS_DEBUG_CMDS is not set: name a file of commands, one a line, for the booted node")
	}
	key := NewKey(t)
	// ROS_DEBUG_CONFIG: more cloud-config (a file) for the node;
	// ROS_DEBUG_MEMORY: the guest's MiB; ROS_DEBUG_SERIAL: a file for
	// the serial console, written at quit.
	extra := ""
	if f := os.Getenv("ROS_DEBUG_CONFIG"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		extra = string(b)
	}
	mem := 0
	if v := os.Getenv("ROS_DEBUG_MEMORY"); v != "" {
		var err error
		if mem, err = strconv.Atoi(v); err != nil || mem < 512 {
			t.Fatalf("ROS_DEBUG_MEMORY=%q: want the guest's MiB, 512 or more", v)
		}
	}
	m := New(t, Options{UserData: SeedConfig(key, extra), MetaData: "instance-id: dbg\nlocal-hostname: dbg\n", MemoryMB: mem, DiskGiB: 10})
	if kp := os.Getenv("ROS_DEBUG_KEY"); kp != "" {
		blk, err := ssh.MarshalPrivateKey(key.priv, "")
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(kp, pem.EncodeToMemory(blk), 0o600)
	}
	start := time.Now()
	m.Boot()
	t.Logf("ssh port %d", m.SSHPort)
	s := m.SSH("rancher", key, bootTimeout)
	t.Logf("logged in %.1fs after QEMU started", time.Since(start).Seconds())
	done := 0
	for {
		f, err := os.Open(path)
		if err == nil {
			sc := bufio.NewScanner(f)
			n := 0
			for sc.Scan() {
				n++
				if n <= done {
					continue
				}
				done = n
				line := sc.Text()
				if line == "quit" {
					f.Close()
					// ROS_DEBUG_SERIAL: a file to keep the serial console in.
					if sp := os.Getenv("ROS_DEBUG_SERIAL"); sp != "" {
						if err := os.WriteFile(sp, []byte(m.Console()), 0o644); err != nil {
							t.Error(err)
						}
					}
					return
				}
				out, err := s.Run(line)
				t.Logf("$ %s\n%s(err %v)", line, out, err)
			}
			f.Close()
		}
		time.Sleep(2 * time.Second)
	}
}
