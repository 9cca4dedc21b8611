//go:build e2e

package e2e

import (
	"fmt"
	"strings"
)

// ProbeService returns a compose service for rancher.services that runs
// script (POSIX sh) in the syslog image, privileged, in the host's PID
// namespace, after syslog, with /var/lib/rancher/probe as its state and the node's ros command. The
// script reports with `say WORDS`, which prints "PROBE WORDS" on the
// serial console through /dev/kmsg. Write the script as plain sh: the
// dollars are escaped for compose here.
func ProbeService(version, name, script string, extra ...string) string {
	body := "say() { echo \"PROBE $*\" > /dev/kmsg; }\n" + script
	// Compose interpolates $VAR in every value; $$ is a literal $.
	body = strings.ReplaceAll(body, "$", "$$")
	var b strings.Builder
	fmt.Fprintf(&b, "    %s:\n", name)
	fmt.Fprintf(&b, "      image: rosos/syslog:%s\n", version)
	b.WriteString("      privileged: true\n      pid: host\n      network_mode: host\n      restart: \"no\"\n")
	b.WriteString("      labels:\n        io.rancher.os.after: syslog\n")
	b.WriteString("      volumes:\n        - /var/lib/rancher/probe:/probe\n        - /var/log:/var/log\n        - /dev:/dev\n        - /usr/bin/ros:/usr/bin/ros:ro\n")
	for _, e := range extra {
		b.WriteString(e)
	}
	b.WriteString("      command:\n        - sh\n        - -c\n        - |\n")
	for _, l := range strings.Split(body, "\n") {
		b.WriteString("          " + l + "\n")
	}
	return b.String()
}

// CloudConfig wraps services (from ProbeService) into a #cloud-config document.
func CloudConfig(services ...string) string {
	return "#cloud-config\nrancher:\n  services:\n" + strings.Join(services, "")
}
