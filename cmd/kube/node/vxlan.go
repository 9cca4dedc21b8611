package node

import (
	"fmt"
	"net"
	"os/exec"
	"strings"
	"syscall"

	"github.com/vishvananda/netlink"
)

// The VXLAN overlay between nodes, in flannel's layout (device flannel.1,
// VNI 1, UDP port 8472): each node's VTEP is the first address of its pod
// CIDR on flannel.1, with a MAC made from the node's address, so no node
// has to publish anything: a node's Node object (pod CIDR, InternalIP)
// says all another needs.
const (
	vxlanName = "flannel.1"
	vxlanVNI  = 1
	vxlanPort = 8472
	// vxlanOverhead is what VXLAN over IPv4 adds to a frame.
	vxlanOverhead = 50
)

// vtepMAC is a node's VTEP MAC: locally administered, from its IPv4.
func vtepMAC(nodeIP net.IP) net.HardwareAddr {
	v4 := nodeIP.To4()
	if v4 == nil {
		return nil
	}
	return net.HardwareAddr{0x02, 0x52, v4[0], v4[1], v4[2], v4[3]}
}

// vtepIP is the first address of a pod CIDR (10.42.1.0/24: 10.42.1.0).
func vtepIP(podCIDR string) (net.IP, *net.IPNet, error) {
	ip, n, err := net.ParseCIDR(podCIDR)
	if err != nil {
		return nil, nil, err
	}
	return ip.Mask(n.Mask), n, nil
}

// ensureVXLAN makes this node's flannel.1 on the interface holding nodeIP,
// with its VTEP address; it returns the device's MTU.
func ensureVXLAN(nodeIP, podCIDR string) (int, error) {
	ip := net.ParseIP(nodeIP)
	parent, err := linkWithAddr(ip)
	if err != nil {
		return 0, err
	}
	want := &netlink.Vxlan{
		LinkAttrs:    netlink.LinkAttrs{Name: vxlanName, MTU: parent.Attrs().MTU - vxlanOverhead, HardwareAddr: vtepMAC(ip)},
		VxlanId:      vxlanVNI,
		VtepDevIndex: parent.Attrs().Index,
		SrcAddr:      ip,
		Port:         vxlanPort,
		Learning:     false,
	}
	if l, err := netlink.LinkByName(vxlanName); err == nil {
		v, ok := l.(*netlink.Vxlan)
		if !ok || v.VxlanId != vxlanVNI || !v.SrcAddr.Equal(ip) || v.VtepDevIndex != want.VtepDevIndex || v.Port != vxlanPort || v.Attrs().HardwareAddr.String() != want.HardwareAddr.String() {
			if err := netlink.LinkDel(l); err != nil {
				return 0, fmt.Errorf("replace %s: %w", vxlanName, err)
			}
		}
	}
	if _, err := netlink.LinkByName(vxlanName); err != nil {
		if err := netlink.LinkAdd(want); err != nil {
			return 0, fmt.Errorf("create %s: %w", vxlanName, err)
		}
	}
	l, err := netlink.LinkByName(vxlanName)
	if err != nil {
		return 0, err
	}
	vip, _, err := vtepIP(podCIDR)
	if err != nil {
		return 0, err
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: vip, Mask: net.CIDRMask(32, 32)}}
	if err := netlink.AddrReplace(l, addr); err != nil {
		return 0, fmt.Errorf("%s address %s: %w", vxlanName, vip, err)
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return 0, err
	}
	return l.Attrs().MTU, nil
}

// vxlanPeer routes another node's pod CIDR over flannel.1 to its VTEP:
// the neighbour entry (VTEP address to MAC), the forwarding entry (MAC to
// the node's address) and the route.
func vxlanPeer(podCIDR, nodeIP string) error {
	l, err := netlink.LinkByName(vxlanName)
	if err != nil {
		return err
	}
	vip, dst, err := vtepIP(podCIDR)
	if err != nil {
		return err
	}
	node := net.ParseIP(nodeIP)
	mac := vtepMAC(node)
	if mac == nil {
		return fmt.Errorf("%s: VXLAN peers must have IPv4 addresses", nodeIP)
	}
	idx := l.Attrs().Index
	if err := netlink.NeighSet(&netlink.Neigh{LinkIndex: idx, State: netlink.NUD_PERMANENT, Type: syscall.RTN_UNICAST, IP: vip, HardwareAddr: mac}); err != nil {
		return fmt.Errorf("neighbour %s: %w", vip, err)
	}
	if err := netlink.NeighSet(&netlink.Neigh{LinkIndex: idx, Family: syscall.AF_BRIDGE, State: netlink.NUD_PERMANENT, Flags: netlink.NTF_SELF, IP: node, HardwareAddr: mac}); err != nil {
		return fmt.Errorf("forwarding entry %s: %w", node, err)
	}
	return netlink.RouteReplace(&netlink.Route{LinkIndex: idx, Dst: dst, Gw: vip, Flags: int(netlink.FLAG_ONLINK)})
}

func linkWithAddr(ip net.IP) (netlink.Link, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return nil, err
	}
	for _, l := range links {
		addrs, err := netlink.AddrList(l, netlink.FAMILY_ALL)
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if a.IP.Equal(ip) {
				return l, nil
			}
		}
	}
	return nil, fmt.Errorf("no interface has the node's address %s", ip)
}

// masquerade makes pods' traffic that leaves the cluster (not to another
// pod) come from the node's address, in an nftables table of its own.
func masquerade(podCIDR, clusterCIDR string) error {
	rules := fmt.Sprintf(`table ip rosos-kube
delete table ip rosos-kube
table ip rosos-kube {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		ip saddr %s ip daddr != %s ip daddr != 224.0.0.0/4 masquerade
	}
}
`, podCIDR, clusterCIDR)
	cmd := exec.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nft: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}
