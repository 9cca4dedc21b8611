package pid1

import (
	"fmt"
	"maps"

	"github.com/rosos/ros/internal/paths"
	"github.com/rosos/ros/system/grubenv"
)

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
	return grubenv.Update(paths.PID1ESP, func(env grubenv.Env, exists bool) (bool, error) {
		if !exists {
			maps.Copy(env, grubenv.NewSlots(paths.SlotTries))
		}
		if env[grubenv.KeyActive] == slot && env.Tries(slot) == paths.SlotTries && env[grubenv.KeyNext] != slot && env[grubenv.GoodKey(slot)] == "1" {
			return false, nil // already so: do not write the ESP at every boot
		}
		return true, env.MarkGood(slot, paths.SlotTries)
	})
}

// withEnv mounts the ESP and runs f with the grubenv's path.
func withEnv(f func(path string) error) error { return grubenv.OnESP(paths.PID1ESP, f) }
