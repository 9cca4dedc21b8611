package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/spf13/cobra"
)

// probeCmd is a health check for a service's compose file that needs no
// client of the service in its image: an HTTP GET, over TCP or a unix
// socket, that succeeds on a 2xx status.
func probeCmd() *cobra.Command {
	var socket string
	var timeout time.Duration
	c := &cobra.Command{
		Use:   "probe URL",
		Short: "Succeed when an HTTP GET of URL answers 2xx (a health check for services)",
		Long: "probe makes one HTTP GET of URL and exits 0 when the status is 2xx, 1 otherwise,\n" +
			"printing why. With --unix it connects to a unix socket instead, and the URL's host\n" +
			"is only a name. Bind /usr/bin/ros into a service to use it as its healthcheck.",
		Example: "  ros probe --unix /var/run/docker.sock http://docker/_ping\n" +
			"  ros probe http://127.0.0.1:8080/healthz",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return probe(cmd.Context(), cmd.OutOrStdout(), args[0], socket, timeout)
		},
	}
	c.Flags().StringVar(&socket, "unix", "", "connect to this unix socket")
	c.Flags().DurationVar(&timeout, "timeout", 10*time.Second, "give up after this long")
	return c
}

func probe(ctx context.Context, out io.Writer, rawURL, socket string, timeout time.Duration) error {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("probe: %q is not an http:// or https:// URL", rawURL)
	}
	tr := &http.Transport{}
	if socket != "" {
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		}
	}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return fmt.Errorf("probe %s: %w", rawURL, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("probe %s: %s: %s", rawURL, resp.Status, body)
	}
	_, err = fmt.Fprintf(out, "%s: %s\n", rawURL, resp.Status)
	return err
}
