package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/rosos/ros/system/osimage"
)

// keygenCmd makes a signing key pair for OS images.
func keygenCmd() *cobra.Command {
	var force bool
	c := &cobra.Command{
		Use:   "keygen PREFIX",
		Short: "Make an ECDSA P-256 key pair for signing OS images: PREFIX.key (private, 0600) and PREFIX.pub",
		Example: `  out/ros-build keygen ~/rosos-signing
  # then: make os-image ROS_SIGNING_KEY=~/rosos-signing.key
  # and give the nodes ~/rosos-signing.pub in rancher.upgrade.public_keys`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			priv, pub, err := osimage.GenerateKey()
			if err != nil {
				return err
			}
			flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
			if force {
				flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
			}
			for _, f := range []struct {
				name string
				b    []byte
				mode os.FileMode
			}{{args[0] + ".key", priv, 0o600}, {args[0] + ".pub", pub, 0o644}} {
				fd, err := os.OpenFile(f.name, flags, f.mode)
				if err != nil {
					return fmt.Errorf("%w (--force replaces it)", err)
				}
				if _, err := fd.Write(f.b); err != nil {
					fd.Close()
					return err
				}
				if err := fd.Close(); err != nil {
					return err
				}
			}
			fmt.Printf("private key %s.key, public key %s.pub\n", args[0], args[0])
			return nil
		},
	}
	c.Flags().BoolVar(&force, "force", false, "replace existing key files")
	return c
}

// signCmd adds a signature to an OS image archive.
func signCmd() *cobra.Command {
	var key, ref string
	c := &cobra.Command{
		Use:     "sign --key FILE ARCHIVE",
		Short:   "Sign the OS image in an OCI image archive (a cosign-form signature kept in the archive)",
		Example: `  out/ros-build sign --key ~/rosos-signing.key out/rosos-os-v1.2.0.oci.tar`,
		Args:    cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			b, err := os.ReadFile(key)
			if err != nil {
				return err
			}
			k, err := osimage.ParsePrivateKey(b)
			if err != nil {
				return fmt.Errorf("%s: %w", key, err)
			}
			d, err := osimage.SignArchive(args[0], k, ref)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			fmt.Printf("signed %s (%s) with %s\n", args[0], d, key)
			return nil
		},
	}
	c.Flags().StringVar(&key, "key", "", "the private key (PEM: PKCS #8 ECDSA P-256 or Ed25519)")
	c.Flags().StringVar(&ref, "ref", "docker.io/rosos/os", "the repository named in the signature")
	_ = c.MarkFlagRequired("key")
	return c
}
