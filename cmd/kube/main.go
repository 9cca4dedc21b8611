// Command kube is the Kubernetes of rosos in one static binary, in the
// shape of k3s: `kube server` and `kube agent` run a node (certificates,
// datastore, control plane, kubelet, kube-proxy, the CRI containerd), and
// the upstream programs are in it too, chosen by the name it is called by
// (a link named kubectl) or by its first argument (kube kubectl get nodes).
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/rosos/ros/cmd/kube/node"
	"github.com/spf13/cobra"
	"go.etcd.io/etcd/server/v3/etcdmain"
	"k8s.io/component-base/cli"
	"k8s.io/component-base/logs"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	kubectl "k8s.io/kubectl/pkg/cmd"
	kubectlutil "k8s.io/kubectl/pkg/cmd/util"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	proxy "k8s.io/kubernetes/cmd/kube-proxy/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
	kubelet "k8s.io/kubernetes/cmd/kubelet/app"
	_ "time/tzdata"
)

// cobraProgram runs an upstream cobra command the way its own main does.
func cobraProgram(newCmd func() *cobra.Command) func() int {
	return func() int { return cli.Run(newCmd()) }
}

// programs are the upstream programs, by the name they are called by.
var programs = map[string]func() int{
	"kube-apiserver":          cobraProgram(apiserver.NewAPIServerCommand),
	"kube-controller-manager": cobraProgram(controllermanager.NewControllerManagerCommand),
	"kube-scheduler":          cobraProgram(func() *cobra.Command { return scheduler.NewSchedulerCommand() }),
	"kubelet":                 cobraProgram(func() *cobra.Command { return kubelet.NewKubeletCommand(context.Background()) }),
	"kube-proxy":              cobraProgram(proxy.NewProxyCommand),
	"kubectl": func() int {
		logs.GlogSetter(kubectl.GetLogVerbosity(os.Args)) //nolint:errcheck // as upstream's main
		if err := cli.RunNoErrOutput(kubectl.NewDefaultKubectlCommand()); err != nil {
			kubectlutil.CheckErr(err)
		}
		return 0
	},
	"etcd": func() int { etcdmain.Main(os.Args); return 0 },
}

func main() {
	name := filepath.Base(os.Args[0])
	if _, ok := programs[name]; !ok && name != "kube" && !strings.HasPrefix(name, "kube.") {
		name = "kube"
	}
	if name == "kube" || strings.HasPrefix(name, "kube.") {
		if len(os.Args) < 2 {
			usage()
			os.Exit(2)
		}
		name = os.Args[1]
		os.Args = os.Args[1:]
	}
	if run, ok := programs[name]; ok {
		os.Exit(run())
	}
	if run, ok := commands[name]; ok {
		os.Exit(run(os.Args[1:]))
	}
	fmt.Fprintf(os.Stderr, "kube: %q is not a command of this binary\n", name)
	usage()
	os.Exit(2)
}

// commands are this binary's own commands.
var commands = map[string]func(args []string) int{
	"server": func(args []string) int { return runNode("server", args) },
	"agent":  func(args []string) int { return runNode("agent", args) },
	// flannel is the node's pod network, a component of kube agent.
	"flannel": func(args []string) int {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
		defer stop()
		if err := node.RunFlannel(ctx, args); err != nil {
			fmt.Fprintf(os.Stderr, "kube flannel: %v\n", err)
			return 1
		}
		return 0
	},
}

// runNode runs kube server or kube agent until SIGTERM.
func runNode(role string, args []string) int {
	c, err := node.ParseFlags(role, args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kube %s: %v\n", role, err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stdout, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := node.Run(ctx, log, c); err != nil {
		log.Error("node stopped", "err", err)
		return 1
	}
	return 0
}

func usage() {
	var names []string
	for n := range commands {
		names = append(names, n)
	}
	for n := range programs {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintf(os.Stderr, "usage: kube COMMAND [ARGS]\ncommands: %s\n", strings.Join(names, ", "))
}
