package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/rosos/ros/internal/compose"
)

// runScript runs a shell script to completion in a one-shot container of
// the console's image with the console's host access (privileged, host
// namespaces, /home, /opt, /var/lib/rancher ...): the node's root has no
// shell of its own. Output goes to /var/log/system/NAME.log.
func (d *Daemon) runScript(ctx context.Context, name, body string, defs []compose.Service) (uint32, error) {
	var console *compose.Service
	for i := range defs {
		if defs[i].Name == "console" {
			console = &defs[i]
		}
	}
	if console == nil {
		return 0, errors.New("no console service to run commands in")
	}
	s := compose.Service{
		Name: name, Image: console.Image, Entrypoint: []string{"/bin/sh", "-c"}, Command: []string{body},
		Env: console.Env, Binds: console.Binds, Privileged: true, HostNetwork: true, HostPID: true,
		HostIPC: true, HostUTS: true, Restart: "no", Labels: map[string]string{compose.LabelScope: "system"},
	}
	if _, err := os.Stat("/etc/rc.local"); err == nil {
		s.Binds = append(s.Binds, compose.Bind{Source: "/etc/rc.local", Target: "/etc/rc.local", ReadOnly: true})
	}
	s.Hash = fmt.Sprintf("run-%d", time.Now().UnixNano())
	t, err := d.runner.Start(ctx, s)
	if err != nil {
		return 0, err
	}
	defer func() {
		if err := d.runner.Remove(context.WithoutCancel(ctx), name); err != nil {
			d.log.Error("remove", "container", name, "err", err)
		}
	}()
	select {
	case ex := <-t.Exited:
		return ex.Code, ex.Err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}
