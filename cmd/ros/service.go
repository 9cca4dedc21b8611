package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/rosos/ros/client"
	"github.com/rosos/ros/internal/paths"
	ctrdrunner "github.com/rosos/ros/internal/runner/containerd"
	"golang.org/x/term"
)

func serviceCmd() *cobra.Command {
	c := &cobra.Command{Use: "service", Aliases: []string{"s"}, Short: "List, enable, start, stop and inspect system services"}
	c.AddCommand(serviceListCmd(false), serviceListCmd(true), enableCmd(), disableCmd(), upCmd(),
		actionCmd("start", "Start services"), actionCmd("stop", "Stop services (until started again or the next boot)"),
		actionCmd("restart", "Restart services"), actionCmd("rm", "Stop services and remove their containers"),
		logsCmd(), execCmd())
	return c
}

func uptime(st client.Service) string {
	if st.Status != "running" || st.Since.IsZero() {
		return "-"
	}
	return time.Since(st.Since).Round(time.Second).String()
}

func serviceListCmd(psOnly bool) *cobra.Command {
	use, short := "list", "Every known service: built-in, enabled and from the catalog, with its state"
	if psOnly {
		use, short = "ps", "The services that have a container, with pid and uptime"
	}
	var out *output
	c := &cobra.Command{
		Use: use, Short: short, Args: cobra.NoArgs,
		Example: "  ros service " + use + "\n  ros service " + use + " -o json",
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := api().Services(cmd.Context())
			if err != nil {
				return err
			}
			if psOnly {
				var keep []client.Service
				for _, s := range r.Services {
					if s.Status != "stopped" && s.Status != "removed" {
						keep = append(keep, s)
					}
				}
				r.Services, r.Catalog = keep, nil
			}
			if out.json() {
				return printJSON(os.Stdout, r)
			}
			w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			if psOnly {
				fmt.Fprintln(w, "NAME\tSTATE\tPID\tUPTIME\tRESTARTS\tIMAGE")
				for _, s := range r.Services {
					fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%d\t%s\n", s.Name, state(s), s.Pid, uptime(s), s.Restarts, s.Image)
				}
				return w.Flush()
			}
			fmt.Fprintln(w, "NAME\tENABLED\tSOURCE\tSTATE\tRESTARTS\tUPTIME\tIMAGE")
			for _, s := range r.Services {
				fmt.Fprintf(w, "%s\tyes\t%s\t%s\t%d\t%s\t%s\n", s.Name, s.Source, state(s), s.Restarts, uptime(s), s.Image)
			}
			for _, n := range r.Catalog {
				fmt.Fprintf(w, "%s\tno\tcatalog\t-\t-\t-\t-\n", n)
			}
			return w.Flush()
		},
	}
	out = addOutput(c, "table", "json")
	return c
}

func state(s client.Service) string {
	st := s.Status
	if s.Health != "" {
		st += " (" + s.Health + ")"
	}
	if s.Status == "failed" && s.LastErr != "" {
		st += ": " + s.LastErr
	}
	return st
}

func enableCmd() *cobra.Command {
	var name string
	c := &cobra.Command{
		Use:   "enable NAME|FILE|URL",
		Short: "Enable and start a service from the catalog, a local compose file or a URL",
		Long: "Enable checks the compose file first (every field supported, names free, images present or\n" +
			"pullable) and changes nothing if it is refused. It then sets rancher.services_include.NAME,\n" +
			"keeps the file in " + paths.IncludedDir + ", and starts the service.",
		Example: "  ros service enable debug-shell\n  ros service enable ./web.yml\n  ros service enable --name web https://example.com/web.yml",
		Args:    cobra.ExactArgs(1),
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			names, _ := completeServices(true)(cmd, args, toComplete)
			return names, cobra.ShellCompDirectiveDefault // a catalog name, or a file
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			req := client.EnableRequest{Ref: args[0], Name: name}
			if !strings.Contains(args[0], "://") {
				if b, err := os.ReadFile(args[0]); err == nil {
					req.Content = b
					if abs, err := filepath.Abs(args[0]); err == nil {
						req.Ref = abs
					}
				} else if strings.ContainsAny(args[0], "/.") {
					return fmt.Errorf("enable %s: %w", args[0], err)
				}
			}
			r, err := api().Enable(cmd.Context(), req)
			if err != nil {
				return fmt.Errorf("enable %s: %w", args[0], err)
			}
			fmt.Printf("enabled %s: started %s\n", r.Enabled, strings.Join(r.Services, ", "))
			return nil
		},
	}
	c.Flags().StringVar(&name, "name", "", "the name to enable it as (default: the file's name)")
	return c
}

func disableCmd() *cobra.Command {
	return &cobra.Command{
		Use: "disable NAME", Short: "Stop an enabled service, remove its containers, and keep it off at boot", Args: cobra.ExactArgs(1),
		Example:           "  ros service disable debug-shell",
		ValidArgsFunction: completeServices(false),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := api().Disable(cmd.Context(), args[0]); err != nil {
				return fmt.Errorf("disable %s: %w", args[0], err)
			}
			fmt.Printf("disabled %s\n", args[0])
			return nil
		},
	}
}

func upCmd() *cobra.Command {
	return &cobra.Command{
		Use: "up [NAME...]", Short: "Start the named services (default: every known service) that are not running",
		ValidArgsFunction: completeServices(false),
		RunE: func(cmd *cobra.Command, args []string) error {
			return api().Up(cmd.Context(), args)
		},
	}
}

func actionCmd(action, short string) *cobra.Command {
	return &cobra.Command{
		Use: action + " NAME...", Short: short, Args: cobra.MinimumNArgs(1),
		Example:           "  ros service " + action + " ntp",
		ValidArgsFunction: completeServices(false),
		RunE: func(cmd *cobra.Command, args []string) error {
			var errs []error
			for _, n := range args {
				if err := api().Action(cmd.Context(), n, action); err != nil {
					errs = append(errs, fmt.Errorf("%s %s: %w", action, n, err))
					continue
				}
				fmt.Println(n)
			}
			return errors.Join(errs...)
		},
	}
}

func logsCmd() *cobra.Command {
	var follow bool
	var tail int
	c := &cobra.Command{
		Use: "logs NAME", Short: "Print a service's output (" + paths.SystemLogDir + "/NAME.log)", Args: cobra.ExactArgs(1),
		Example:           "  ros service logs -f --tail 20 console",
		ValidArgsFunction: completeServices(false),
		RunE: func(cmd *cobra.Command, args []string) error {
			p := paths.LogPath(args[0])
			f, err := os.Open(p)
			if err != nil {
				return fmt.Errorf("logs %s: %w", args[0], err)
			}
			defer f.Close()
			if tail >= 0 {
				if err := seekTail(f, tail); err != nil {
					return err
				}
			}
			if _, err := io.Copy(os.Stdout, f); err != nil {
				return err
			}
			if !follow {
				return nil
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), unix.SIGINT, unix.SIGTERM)
			defer stop()
			return followFile(ctx, f, p, os.Stdout)
		},
	}
	c.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing what the service writes")
	c.Flags().IntVar(&tail, "tail", -1, "print only the last N lines")
	return c
}

// seekTail moves f to the start of its last n lines.
func seekTail(f *os.File, n int) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	const chunk = 64 << 10
	lines := 0
	buf := make([]byte, chunk)
	for off := size; off > 0; {
		step := int64(chunk)
		if off < step {
			step = off
		}
		off -= step
		if _, err := f.ReadAt(buf[:step], off); err != nil && err != io.EOF {
			return err
		}
		for i := step - 1; i >= 0; i-- {
			if buf[i] == '\n' && off+i != size-1 {
				lines++
				if lines == n {
					_, err := f.Seek(off+i+1, io.SeekStart)
					return err
				}
			}
		}
	}
	_, err = f.Seek(0, io.SeekStart)
	return err
}

// followFile prints what is appended to f, and starts over when the file
// is rotated (cut shorter than what was read).
func followFile(ctx context.Context, f *os.File, p string, w io.Writer) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(300 * time.Millisecond):
		}
		pos, _ := f.Seek(0, io.SeekCurrent)
		if fi, err := os.Stat(p); err == nil && fi.Size() < pos {
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				return err
			}
		}
		if _, err := io.Copy(w, f); err != nil {
			return err
		}
	}
}

func execCmd() *cobra.Command {
	var tty bool
	c := &cobra.Command{
		Use:   "exec NAME -- CMD...",
		Short: "Run a command in a running service's container",
		Long: "Exec runs CMD in the container of a running service, with its environment and\n" +
			"namespaces. ros ends with the command's exit status. With -t the command gets a\n" +
			"terminal (stdin must be one), which is put back as it was when the command ends.",
		Example:           "  ros service exec console -- ps\n  ros service exec -t console -- /bin/sh",
		Args:              cobra.MinimumNArgs(2),
		ValidArgsFunction: completeServices(false),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := ctrdrunner.Connect(paths.ContainerdSock)
			if err != nil {
				return err
			}
			defer func() { _ = cl.Close() }()
			r := &ctrdrunner.Runner{Client: cl}
			stdinTTY := term.IsTerminal(int(os.Stdin.Fd()))
			if tty && !stdinTTY {
				return errors.New("-t: stdin is not a terminal")
			}
			var in io.Reader
			if !stdinTTY || tty {
				in = os.Stdin
			}
			if tty {
				old, err := term.MakeRaw(int(os.Stdin.Fd()))
				if err != nil {
					return fmt.Errorf("-t: %w", err)
				}
				defer func() { _ = term.Restore(int(os.Stdin.Fd()), old) }()
			}
			code, err := r.Exec(cmd.Context(), args[0], args[1:], in, os.Stdout, os.Stderr, tty)
			if err != nil {
				return err
			}
			if code != 0 {
				return exitCode(code) // main exits with it, after the terminal is restored
			}
			return nil
		},
	}
	c.Flags().BoolVarP(&tty, "tty", "t", false, "give the command a terminal")
	return c
}
