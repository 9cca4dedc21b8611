package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rosos/ros/system/kmod"
)

func modulesCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "modules MODDIR LIST...",
		Short: "Print the module files (relative to MODDIR) the lists need, dependencies included",
		Long: "Each LIST file names modules, one a line, or whole directories of the kernel tree as\n" +
			"dir:kernel/net/netfilter. Modules the kernel has built in are left out.",
		Args: cobra.MinimumNArgs(2),
		RunE: func(_ *cobra.Command, args []string) error {
			idx, err := kmod.Open(args[0])
			if err != nil {
				return err
			}
			var names []string
			for _, list := range args[1:] {
				n, err := readModuleList(args[0], list)
				if err != nil {
					return err
				}
				names = append(names, n...)
			}
			order, err := idx.Resolve(names...)
			if err != nil {
				return err
			}
			for _, n := range order {
				p, _ := idx.Path(n)
				fmt.Println(p)
			}
			return nil
		},
	}
}

func readModuleList(moddir, path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	for line := 1; s.Scan(); line++ {
		l := strings.TrimSpace(s.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if dir, ok := strings.CutPrefix(l, "dir:"); ok {
			before := len(out)
			err := filepath.Walk(filepath.Join(moddir, dir), func(p string, fi os.FileInfo, err error) error {
				if err != nil {
					return err
				}
				if kmod.IsModuleFile(p) {
					out = append(out, kmod.Name(p))
				}
				return nil
			})
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %w", path, line, err)
			}
			if len(out) == before {
				return nil, fmt.Errorf("%s:%d: no modules under %s", path, line, dir)
			}
			continue
		}
		out = append(out, l)
	}
	return out, s.Err()
}
