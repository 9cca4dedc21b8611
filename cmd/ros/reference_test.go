package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// reference is docs/ros.md: the hand-written ros.md.head, then every
// command's reference as cobra/doc writes it, one after the other.
func reference(t *testing.T) []byte {
	t.Helper()
	head, err := os.ReadFile("ros.md.head")
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	b.Write(head)
	anchor := func(name string) string {
		return "#" + strings.ReplaceAll(strings.TrimSuffix(name, ".md"), "_", "-")
	}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" {
			return
		}
		var cb bytes.Buffer
		if err := doc.GenMarkdownCustom(c, &cb, anchor); err != nil {
			t.Fatal(err)
		}
		b.WriteString("\n")
		b.Write(cb.Bytes())
		if c.Name() == "completion" {
			return // one script per shell: the parent says all
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root())
	return bytes.TrimRight(b.Bytes(), "\n")
}

func TestCommandReference(t *testing.T) {
	got := append(reference(t), '\n')
	path := filepath.Join("..", "..", "docs", "ros.md")
	if os.Getenv("ROS_UPDATE_DOCS") != "" {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("docs/ros.md is not what the commands say: run make docs")
	}
}

// Every command a user runs has an example or takes no arguments worth
// one, and -o means the output format wherever it is.
func TestCommandsAreDocumented(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden {
			return
		}
		if c.Short == "" {
			t.Errorf("%s: no short description", c.CommandPath())
		}
		if f := c.Flags().Lookup("output"); f != nil && !strings.HasPrefix(f.Usage, "output format: ") {
			t.Errorf("%s: -o is %q, not the output format", c.CommandPath(), f.Usage)
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root())
}
