package node

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/flannel-io/flannel/pkg/backend"
	_ "github.com/flannel-io/flannel/pkg/backend/hostgw" // flannel_backend: host-gw
	_ "github.com/flannel-io/flannel/pkg/backend/vxlan"  // flannel_backend: vxlan
	"github.com/flannel-io/flannel/pkg/ip"
	"github.com/flannel-io/flannel/pkg/ipmatch"
	"github.com/flannel-io/flannel/pkg/subnet/kube"
	"github.com/flannel-io/flannel/pkg/trafficmngr/nftables"
)

// flannel runs flannel's kube subnet manager and backend (upstream
// flannel's packages, the way k3s embeds them) as a component of the
// node: `kube flannel`. It publishes this node's VTEP in the node's
// annotations, programs a way to every other node's pod CIDR, and
// masquerades pods' traffic that leaves the cluster (nftables). It is a
// process of its own so that the node's supervisor restarts it alone.

// netConf is flannel's net-conf.json for a cluster.
func netConf(clusterCIDR, backendType string) ([]byte, error) {
	switch backendType {
	case "vxlan", "host-gw":
	default:
		return nil, fmt.Errorf("flannel backend %q: want vxlan or host-gw", backendType)
	}
	return json.MarshalIndent(map[string]any{
		"Network":        clusterCIDR,
		"EnableIPv4":     true,
		"EnableNFTables": true,
		"Backend":        map[string]string{"Type": backendType},
	}, "", "  ")
}

// RunFlannel is `kube flannel --kubeconfig K --node-name N --node-ip IP
// --net-conf F --subnet-file F`. It returns when ctx ends or flannel
// fails; the subnet file (FLANNEL_SUBNET, FLANNEL_MTU) is written once
// the node's network is set up.
func RunFlannel(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("kube flannel", flag.ContinueOnError)
	kubeconfig := fs.String("kubeconfig", "", "the node's kubeconfig")
	nodeName := fs.String("node-name", "", "this node's name")
	nodeIP := fs.String("node-ip", "", "this node's address: its interface carries the overlay")
	conf := fs.String("net-conf", "", "flannel's net-conf.json")
	subnetFile := fs.String("subnet-file", "/run/flannel/subnet.env", "where the node's subnet is written")
	if err := fs.Parse(args); err != nil {
		return err
	}
	for n, v := range map[string]string{"kubeconfig": *kubeconfig, "node-name": *nodeName, "node-ip": *nodeIP, "net-conf": *conf} {
		if v == "" {
			return fmt.Errorf("--%s is required", n)
		}
	}
	// The kube subnet manager finds its node by NODE_NAME.
	if err := os.Setenv("NODE_NAME", *nodeName); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()

	sm, err := kube.NewSubnetManager(ctx, "", *kubeconfig, "flannel.alpha.coreos.com", *conf, false)
	if err != nil {
		return fmt.Errorf("subnet manager: %w", err)
	}
	config, err := sm.GetNetworkConfig(ctx)
	if err != nil {
		return fmt.Errorf("network config: %w", err)
	}
	ext, err := ipmatch.LookupExtIface(*nodeIP, "", "", 0, ipmatch.PublicIPOpts{PublicIP: *nodeIP})
	if err != nil {
		return fmt.Errorf("interface of %s: %w", *nodeIP, err)
	}
	be, err := backend.NewManager(ctx, sm, ext).GetBackend(config.BackendType)
	if err != nil {
		return fmt.Errorf("backend %s: %w", config.BackendType, err)
	}
	bn, err := be.RegisterNetwork(ctx, &wg, config)
	if err != nil {
		return fmt.Errorf("register network: %w", err)
	}
	tm := &nftables.NFTablesManager{}
	if err := tm.Init(ctx); err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	prevNet, prevSub := readSubnetFile(*subnetFile, "FLANNEL_NETWORK"), readSubnetFile(*subnetFile, "FLANNEL_SUBNET")
	if err := tm.SetupAndEnsureMasqRules(ctx, config.Network, prevSub, prevNet, ip.IP6Net{}, ip.IP6Net{}, ip.IP6Net{}, bn.Lease(), 60, false); err != nil {
		return fmt.Errorf("masquerade rules: %w", err)
	}
	tm.SetupAndEnsureForwardRules(ctx, config.Network, ip.IP6Net{}, 60)
	if err := sm.HandleSubnetFile(*subnetFile, config, true, bn.Lease().Subnet, bn.Lease().IPv6Subnet, bn.MTU()); err != nil {
		return fmt.Errorf("subnet file: %w", err)
	}
	fmt.Printf("flannel ready: backend %s, subnet %s, mtu %d\n", config.BackendType, bn.Lease().Subnet, bn.MTU())
	wg.Add(1)
	go func() {
		defer wg.Done()
		bn.Run(ctx)
	}()
	if err := sm.CompleteLease(ctx, bn.Lease(), &wg); err != nil {
		cancel()
		return fmt.Errorf("complete lease: %w", err)
	}
	<-ctx.Done()
	return nil
}

// readSubnetFile reads one network from flannel's subnet file; the zero
// network when the file or key is missing (the first start).
func readSubnetFile(path, key string) ip.IP4Net {
	var n ip.IP4Net
	if v, ok := subnetEnv(path)[key]; ok {
		_ = n.UnmarshalJSON([]byte(strconv.Quote(v)))
	}
	return n
}

// subnetEnv is flannel's subnet file as keys and values.
func subnetEnv(path string) map[string]string {
	env := map[string]string{}
	f, err := os.Open(path)
	if err != nil {
		return env
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "="); ok {
			env[k] = v
		}
	}
	return env
}

// flannelSubnet is the node's subnet and MTU from the subnet file, once
// flannel has written it for podCIDR.
func flannelSubnet(path, podCIDR string) (mtu int, err error) {
	env := subnetEnv(path)
	sub := env["FLANNEL_SUBNET"]
	if sub == "" {
		return 0, errors.New("flannel has not written its subnet yet")
	}
	_, want, err := net.ParseCIDR(podCIDR)
	if err != nil {
		return 0, err
	}
	got, _, err := net.ParseCIDR(sub)
	if err != nil {
		return 0, fmt.Errorf("%s: FLANNEL_SUBNET %q: %w", path, sub, err)
	}
	if !want.Contains(got) {
		return 0, fmt.Errorf("%s: FLANNEL_SUBNET %s is not in the node's pod CIDR %s", path, sub, podCIDR)
	}
	if mtu, err = strconv.Atoi(env["FLANNEL_MTU"]); err != nil {
		return 0, fmt.Errorf("%s: FLANNEL_MTU %q: %w", path, env["FLANNEL_MTU"], err)
	}
	return mtu, nil
}
