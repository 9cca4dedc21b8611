package pid1

import (
	"fmt"
	"maps"

	"github.com/rosos/ros/system/grubenv"
)

// DefaultTries is how many boots a slot gets before GRUB gives up on it.
const DefaultTries = 3

// onTrial reports whether slot is being tried (after an upgrade or a
// rollback) and has not booted well yet: such a boot may be given up.
func onTrial(slot string) bool {
	trial := false
	_ = withEnv(func(path string) error {
		env, err := grubenv.Read(path)
		if err != nil {
			return err
		}
		trial = env[grubenv.KeyNext] == slot || env[grubenv.GoodKey(slot)] == "0"
		return nil
	})
	return trial
}

// markGood records on the ESP that slot booted well: GRUB will boot it by
// default and its tries are full again.
func markGood(slot string) error {
	if !grubenv.ValidSlot(slot) {
		return fmt.Errorf("booted without ros.slot: nothing to mark")
	}
	// Under the lock the service manager's upgrades and rollbacks take.
	return grubenv.Update(espDir, func(env grubenv.Env, exists bool) (bool, error) {
		if !exists {
			maps.Copy(env, grubenv.NewSlots(DefaultTries))
		}
		if env[grubenv.KeyActive] == slot && env.Tries(slot) == DefaultTries && env[grubenv.KeyNext] != slot && env[grubenv.GoodKey(slot)] == "1" {
			return false, nil // already so: do not write the ESP at every boot
		}
		return true, env.MarkGood(slot, DefaultTries)
	})
}

// espDir is where PID 1 mounts the ESP (not the service manager's
// /run/ros/efi-os: both may be mounted at once).
const espDir = "/run/ros/efi"

// withEnv mounts the ESP and runs f with the grubenv's path.
func withEnv(f func(path string) error) error { return grubenv.OnESP(espDir, f) }
