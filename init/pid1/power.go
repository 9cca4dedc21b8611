package pid1

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

const (
	evKey    = 1
	keyPower = 116
)

// watchPowerButton turns a press of the ACPI power button into a clean
// poweroff. PID 1 does it itself so that the button works even when no
// service is up (the acpid service may also act on it: both end in the same
// poweroff).
func (in *Init) watchPowerButton() {
	seen := map[string]bool{}
	for i := 0; i < 60; i++ { // input devices appear as their drivers load
		paths, _ := filepath.Glob("/sys/class/input/event*")
		for _, p := range paths {
			name, _ := os.ReadFile(filepath.Join(p, "device/name"))
			ev := filepath.Base(p)
			if seen[ev] || strings.TrimSpace(string(name)) != "Power Button" {
				continue
			}
			seen[ev] = true
			go in.readButton("/dev/input/" + ev)
		}
		time.Sleep(time.Second)
	}
}

func (in *Init) readButton(dev string) {
	f, err := os.Open(dev)
	if err != nil {
		in.log.Printf("power button %s: %v", dev, err)
		return
	}
	defer f.Close()
	in.log.Printf("power button: %s", dev)
	buf := make([]byte, 24) // struct input_event on 64-bit: timeval, type, code, value
	for {
		if _, err := f.Read(buf); err != nil {
			in.log.Printf("power button %s: %v", dev, err)
			return
		}
		typ := binary.LittleEndian.Uint16(buf[16:])
		code := binary.LittleEndian.Uint16(buf[18:])
		val := int32(binary.LittleEndian.Uint32(buf[20:]))
		if typ == evKey && code == keyPower && val == 1 {
			in.log.Printf("power button pressed")
			in.shutdown <- unix.LINUX_REBOOT_CMD_POWER_OFF
		}
	}
}
