package main

import (
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/rosos/ros/client"
	"github.com/spf13/cobra"
)

func osCmd() *cobra.Command {
	c := &cobra.Command{Use: "os", Short: "The OS image: version, slots, upgrade and rollback"}
	c.AddCommand(osVersionCmd(), osListCmd(), osUpgradeCmd(), osRollbackCmd())
	return c
}

func osVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the running OS version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			slots, err := api().Slots(cmd.Context())
			if err != nil {
				return err
			}
			for _, s := range slots {
				if s.Running {
					fmt.Println(s.Version)
					return nil
				}
			}
			return fmt.Errorf("no slot is running (a live boot?)")
		},
	}
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "-"
}

func osListCmd() *cobra.Command {
	var out *output
	c := &cobra.Command{
		Use:   "list",
		Short: "Both slots: version, which is running, which boots next, whether it booted well, the last failed attempt",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			slots, err := api().Slots(cmd.Context())
			if err != nil {
				return err
			}
			if out.json() {
				return printJSON(os.Stdout, slots)
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SLOT\tVERSION\tRUNNING\tDEFAULT\tNEXT\tGOOD\tTRIES LEFT\tFAILED\tFORMAT")
			for _, s := range slots {
				v := s.Version
				if !s.Present {
					v = "(empty)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", s.Slot, v, yes(s.Running), yes(s.Active), yes(s.Next), yes(s.Good), s.Tries, yes(s.Failed), s.Format)
			}
			return tw.Flush()
		},
	}
	out = addOutput(c, "table", "json")
	return c
}

func osUpgradeCmd() *cobra.Command {
	var req client.UpgradeRequest
	c := &cobra.Command{
		Use:   "upgrade --file ARCHIVE | --image REF [--no-reboot] [--force]",
		Short: "Write an OS image into the other slot, try it at the next boot, and reboot",
		Long: `Write the OS image in ARCHIVE (an OCI image archive, as make os-image writes;
a file or a block device), or REF pulled from a registry through system
containerd, into the slot that is not running, check every
digest, and make GRUB try it at the next boot, up to 3 times. If it does not
boot well, GRUB goes back to the running slot by itself. The running slot and
the boot environment are not changed until the new slot is complete.`,
		Example: "  ros os upgrade --file /home/rancher/rosos-os-v1.2.0.oci.tar\n" +
			"  ros os upgrade --image registry.example:5000/rosos/os:v1.2.0 --no-reboot",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if req.File != "" && req.Image != "" {
				return fmt.Errorf("give the OS image as --file ARCHIVE or --image REF, not both")
			}
			if req.File != "" {
				p, err := filepath.Abs(req.File)
				if err != nil {
					return err
				}
				req.File = p
			}
			if _, err := api().Upgrade(cmd.Context(), req, os.Stdout); err != nil {
				return err
			}
			if req.NoReboot {
				fmt.Println("not rebooting (--no-reboot): the new slot is tried at the next boot")
			} else {
				fmt.Println("rebooting")
			}
			return nil
		},
	}
	c.Flags().StringVar(&req.File, "file", "", "OCI image archive of the OS (a file or a block device)")
	c.Flags().StringVar(&req.Image, "image", "", "the OS image in a registry (rosos/os:v1.3.0, registry.example:5000/os:v1)")
	c.Flags().BoolVar(&req.PlainHTTP, "plain-http", false, "talk to the registry over plain HTTP (a registry without TLS)")
	c.Flags().BoolVar(&req.NoReboot, "no-reboot", false, "do not reboot after writing the slot")
	c.Flags().BoolVar(&req.Force, "force", false, "write the image even if it is the running version")
	return c
}

func osRollbackCmd() *cobra.Command {
	var noReboot bool
	c := &cobra.Command{
		Use:   "rollback [--no-reboot]",
		Short: "Boot the other slot (one that booted well before) next, and reboot",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			slot, err := api().Rollback(cmd.Context(), client.RollbackRequest{NoReboot: noReboot})
			if err != nil {
				return err
			}
			fmt.Printf("slot %s boots next\n", slot)
			return nil
		},
	}
	c.Flags().BoolVar(&noReboot, "no-reboot", false, "do not reboot")
	return c
}

func installCmd() *cobra.Command {
	var req client.InstallRequest
	var cloudConfig string
	c := &cobra.Command{
		Use:   "install --device DEV [--cloud-config FILE] [--no-reboot] [--force]",
		Short: "Install the running OS (from the live ISO) onto a disk",
		Long: `Partition and format DEV with the OS's layout (ESP, RANCHER_STATE with
slot A, RANCHER_PERSISTENT), put the running OS in slot A and GRUB on the
ESP, and store FILE as the installed node's cloud-config. A disk that has
partitions or a file system is refused unless --force.`,
		Example: "  ros install --device /dev/vda --cloud-config node.yml",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cloudConfig != "" {
				b, err := os.ReadFile(cloudConfig)
				if err != nil {
					return err
				}
				req.CloudConfig = b
			}
			if _, err := api().Install(cmd.Context(), req, os.Stdout); err != nil {
				return err
			}
			if !req.NoReboot {
				fmt.Println("rebooting")
			}
			return nil
		},
	}
	c.Flags().StringVar(&req.Device, "device", "", "the disk to install to, such as /dev/vda")
	c.Flags().StringVar(&cloudConfig, "cloud-config", "", "a #cloud-config file for the installed node")
	c.Flags().BoolVar(&req.NoReboot, "no-reboot", false, "do not reboot after installing")
	c.Flags().BoolVar(&req.Force, "force", false, "overwrite a disk that has partitions or a file system")
	_ = c.MarkFlagRequired("device")
	return c
}
