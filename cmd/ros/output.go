package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rosos/ros/client"
)

// api is the service manager's client.
func api() *client.Client { return client.New(client.Socket) }

// output is a command's -o/--output: always the format of what it prints,
// one of the formats the command offers (the first is the default).
type output struct {
	format  string
	formats []string
}

// addOutput gives c the -o flag with formats (the first the default).
func addOutput(c *cobra.Command, formats ...string) *output {
	o := &output{format: formats[0], formats: formats}
	c.Flags().StringVarP(&o.format, "output", "o", formats[0], "output format: "+strings.Join(formats, ", "))
	_ = c.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(formats, cobra.ShellCompDirectiveNoFileComp))
	prev := c.PreRunE
	c.PreRunE = func(cmd *cobra.Command, args []string) error {
		if !slices.Contains(o.formats, o.format) {
			return fmt.Errorf("--output %q: want one of %s", o.format, strings.Join(o.formats, ", "))
		}
		if prev != nil {
			return prev(cmd, args)
		}
		return nil
	}
	return o
}

func (o *output) json() bool { return o.format == "json" }

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// exitCode is an error that ends ros with a command's exit status (ros
// service exec), after every deferred cleanup of the command ran.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// completeServices completes the names of the services the service
// manager knows (with catalog, the catalog's too).
func completeServices(catalog bool) cobra.CompletionFunc {
	return func(cmd *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
		ctx, cancel := context.WithTimeout(cmd.Context(), completionTimeout)
		defer cancel()
		r, err := api().Services(ctx)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var names []string
		for _, s := range r.Services {
			names = append(names, s.Name)
		}
		if catalog {
			names = r.Catalog
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	}
}

// completionTimeout bounds a completion's question to the service manager.
const completionTimeout = 3 * time.Second
