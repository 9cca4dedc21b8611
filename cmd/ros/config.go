package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/rosos/ros/client"
	"github.com/rosos/ros/config"
	"github.com/rosos/ros/internal/compose"
)

func configCmd() *cobra.Command {
	c := &cobra.Command{Use: "config", Aliases: []string{"c"}, Short: "Read and change the node's configuration (cloud-config)"}
	c.AddCommand(configGetCmd(), configSetCmd(), configUnsetCmd(), configMergeCmd(), configExportCmd(),
		configValidateCmd(), configImagesCmd(), configSchemaCmd())
	return c
}

func printYAML(w io.Writer, v any) error {
	switch x := v.(type) {
	case map[string]any, []any:
		b, err := yaml.Marshal(x)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
	_, err := fmt.Fprintln(w, v)
	return err
}

func configGetCmd() *cobra.Command {
	var out *output
	c := &cobra.Command{
		Use:               "get KEY",
		Short:             "Print the value of KEY in the merged config (rancher.network.dns.nameservers)",
		Example:           "  ros config get hostname\n  ros config get rancher.network -o json",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeKeys,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := api().Get(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if !r.Set {
				return fmt.Errorf("%s is not set", args[0])
			}
			if out.json() {
				return printJSON(os.Stdout, r.Value)
			}
			return printYAML(os.Stdout, r.Value)
		},
	}
	out = addOutput(c, "yaml", "json")
	return c
}

// completeKeys completes the config's key paths (first argument only).
func completeKeys(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return config.Keys(), cobra.ShellCompDirectiveNoFileComp
}

// printPlan says what a change did or, dry run, would do.
func printPlan(w io.Writer, p client.Plan) {
	verb := map[bool]string{true: "would change", false: "changed"}[p.DryRun]
	if len(p.Changes) == 0 {
		fmt.Fprintln(w, "no change to the running config")
	}
	for _, c := range p.Changes {
		fmt.Fprintf(w, "%s %s: %s -> %s\n", verb, c.Key, short(c.Old), short(c.New))
	}
	list := func(what string, names []string) {
		if len(names) > 0 {
			fmt.Fprintf(w, "%s: %s\n", what, strings.Join(names, ", "))
		}
	}
	if p.DryRun {
		list("would restart", p.Restart)
		list("would start", p.Start)
		list("would stop", p.Stop)
	} else {
		list("restarted", p.Restart)
		list("started", p.Start)
		list("stopped", p.Stop)
	}
	if p.DryRun {
		list("would apply now", p.Live)
		list("would take effect at the next boot", p.Reboot)
	} else {
		list("applied now", p.Live)
		list("takes effect at the next boot (reboot to apply)", p.Reboot)
	}
	list("overridden", p.Overridden)
	if p.DryRun {
		fmt.Fprintln(w, "dry run: nothing was changed")
	}
}

func short(v any) string {
	if v == nil {
		return "(unset)"
	}
	b, err := yaml.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	s := strings.TrimSpace(string(b))
	if strings.Contains(s, "\n") {
		// flow style on one line
		var n yaml.Node
		if yaml.Unmarshal(b, &n) == nil && len(n.Content) > 0 {
			setFlow(n.Content[0])
			if fb, err := yaml.Marshal(n.Content[0]); err == nil {
				s = strings.TrimSpace(string(fb))
			}
		}
	}
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s
}

func setFlow(n *yaml.Node) {
	n.Style |= yaml.FlowStyle
	for _, c := range n.Content {
		setFlow(c)
	}
}

func reconfigure(ctx context.Context, req client.ReconfigureRequest) error {
	p, err := api().Reconfigure(ctx, req)
	if err != nil {
		return err
	}
	printPlan(os.Stdout, p)
	return nil
}

func configSetCmd() *cobra.Command {
	var dry bool
	c := &cobra.Command{
		Use:   "set KEY VALUE",
		Short: "Set KEY to VALUE (YAML: true, 42, [a, b], {k: v}) in the user's config and apply it",
		Long: `Set KEY to VALUE in /var/lib/rancher/conf/cloud-config.yml and apply it.
VALUE is YAML: true, 42, [a, b], {k: v}; anything else is a string. A key
with dots of its own is written in brackets: rancher.network.interfaces[eth0.100].dhcp.
The whole config is checked first: a bad key, type or value is refused and
nothing changes. Keys that can be applied live are (host name, keys,
network and DNS, sysctl, services); others say they need a reboot.`,
		Example: "  ros config set hostname node1\n" +
			"  ros config set --dry-run rancher.network.dns.nameservers '[1.1.1.1, 9.9.9.9]'\n" +
			"  ros config set rancher.network.interfaces[eth0.100].dhcp true",
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: completeKeys,
		RunE: func(cmd *cobra.Command, args []string) error {
			return reconfigure(cmd.Context(), client.ReconfigureRequest{Key: args[0], Value: args[1], DryRun: dry})
		},
	}
	c.Flags().BoolVar(&dry, "dry-run", false, "print what would change and which services would restart; change nothing")
	return c
}

func configUnsetCmd() *cobra.Command {
	var dry bool
	c := &cobra.Command{
		Use:               "unset KEY",
		Short:             "Remove KEY from the user's config and apply the result",
		Example:           "  ros config unset rancher.sysctl",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeKeys,
		RunE: func(cmd *cobra.Command, args []string) error {
			return reconfigure(cmd.Context(), client.ReconfigureRequest{Key: args[0], Unset: true, DryRun: dry})
		},
	}
	c.Flags().BoolVar(&dry, "dry-run", false, "print what would change; change nothing")
	return c
}

func readInput(file string) ([]byte, error) {
	if file == "" || file == "-" {
		return io.ReadAll(io.LimitReader(os.Stdin, 16<<20))
	}
	return os.ReadFile(file)
}

func configMergeCmd() *cobra.Command {
	var dry bool
	var file string
	c := &cobra.Command{
		Use:     "merge [-i FILE]",
		Short:   "Merge a cloud-config document (stdin, or -i FILE) into the user's config and apply it",
		Example: "  ros config merge -i node.yml --dry-run\n  echo 'hostname: n1' | ros config merge",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := readInput(file)
			if err != nil {
				return err
			}
			return reconfigure(cmd.Context(), client.ReconfigureRequest{Doc: string(b), DryRun: dry})
		},
	}
	c.Flags().StringVarP(&file, "input", "i", "", "the document (default: stdin)")
	c.Flags().BoolVar(&dry, "dry-run", false, "print what would change and which services would restart; change nothing")
	return c
}

func configExportCmd() *cobra.Command {
	var full, private bool
	var file string
	var out *output
	c := &cobra.Command{
		Use:     "export",
		Short:   "Print the user's config (every layer but the image's); --full adds the image's defaults and built-in services",
		Example: "  ros config export\n  ros config export --full -o json\n  ros config export --private --file /root/node.yml",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			doc, err := api().Export(cmd.Context(), full, private)
			if err != nil {
				return err
			}
			w := io.Writer(os.Stdout)
			if file != "" {
				f, err := os.OpenFile(file, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
				if err != nil {
					return err
				}
				defer f.Close()
				w = f
			}
			if out.json() {
				return printJSON(w, doc)
			}
			fmt.Fprintln(w, "#cloud-config")
			if len(doc) == 0 {
				return nil
			}
			return printYAML(w, doc)
		},
	}
	c.Flags().BoolVar(&full, "full", false, "include the image's defaults and the built-in services")
	c.Flags().BoolVar(&private, "private", false, "include secrets (SSH host keys, TLS keys)")
	c.Flags().StringVarP(&file, "file", "f", "", "write to this file (mode 0600) instead of stdout")
	out = addOutput(c, "yaml", "json")
	return c
}

func configValidateCmd() *cobra.Command {
	var file string
	c := &cobra.Command{
		Use:   "validate [FILE]",
		Short: "Check a cloud-config document (FILE, -i FILE or stdin): keys, types, values and its services",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			if len(args) == 1 {
				file = args[0]
			}
			b, err := readInput(file)
			if err != nil {
				return err
			}
			name := file
			if name == "" {
				name = "stdin"
			}
			l, err := config.ParseDoc(name, b)
			if err != nil {
				return err
			}
			cfg, err := config.Merge(l)
			if err != nil {
				return err
			}
			if _, err := compose.Parse(context.Background(), cfg.Rancher.Services, cfg.Rancher.Environment); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			fmt.Printf("%s: valid\n", name)
			return nil
		},
	}
	c.Flags().StringVarP(&file, "input", "i", "", "the document (default: stdin)")
	return c
}

func configImagesCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "images",
		Short: "List the images of the configured services",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := api().Services(cmd.Context())
			if err != nil {
				return err
			}
			seen := map[string]bool{}
			var imgs []string
			for _, s := range r.Services {
				if !seen[s.Image] {
					seen[s.Image] = true
					imgs = append(imgs, s.Image)
				}
			}
			sort.Strings(imgs)
			for _, i := range imgs {
				fmt.Println(i)
			}
			return nil
		},
	}
}

func configSchemaCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print the JSON schema of a cloud-config document",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			b, err := config.Schema()
			if err != nil {
				return err
			}
			_, err = fmt.Printf("%s\n", b)
			return err
		},
	}
}
