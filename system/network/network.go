// Package network configures the node's network from rancher.network:
// loopback, DHCPv4 on the interfaces the config matches, static IPv4 and
// IPv6 addresses, gateways, MTU, and /etc/resolv.conf. Interfaces keep their
// kernel names (eth0, eth1 ...), as in RancherOS v1.
package network

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/rosos/ros/config"
)

// Match finds the configuration of the interface name with hardware
// address mac: an entry with its exact name wins, then one that says
// mac=ADDR, then the first glob (eth*) in name order. It returns the key
// that matched. A VLAN interface (vlan true) is matched by its exact name
// only: it has its parent's hardware address and, named PARENT.ID, its
// parent's prefix too, so neither mac= nor a glob meant for the parent
// should configure it.
func Match(ifaces map[string]config.Interface, name, mac string, vlan bool) (config.Interface, string, bool) {
	if c, ok := ifaces[name]; ok {
		return c, name, true
	}
	if vlan {
		return config.Interface{}, "", false
	}
	for k, c := range ifaces {
		if m, ok := strings.CutPrefix(k, "mac="); ok && mac != "" && strings.EqualFold(m, mac) {
			return c, k, true
		}
	}
	keys := make([]string, 0, len(ifaces))
	for k := range ifaces {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if strings.HasPrefix(k, "mac=") {
			continue
		}
		if ok, _ := path.Match(k, name); ok {
			return ifaces[k], k, true
		}
	}
	return config.Interface{}, "", false
}

// matchLink is Match for a link of the kernel's.
func matchLink(ifaces map[string]config.Interface, l netlink.Link) (config.Interface, string, bool) {
	attrs := l.Attrs()
	return Match(ifaces, attrs.Name, attrs.HardwareAddr.String(), l.Type() == "vlan")
}

// ResolvConf renders /etc/resolv.conf.
func ResolvConf(nameservers, search []string) string {
	var b strings.Builder
	b.WriteString("# written by rosos network (rancher.network.dns)\n")
	if len(search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(search, " "))
	}
	for _, ns := range nameservers {
		fmt.Fprintf(&b, "nameserver %s\n", ns)
	}
	return b.String()
}

// Configurator applies a network configuration and keeps DHCP leases.
type Configurator struct {
	Config     config.Network
	ResolvPath string       // /etc/resolv.conf: written in place, so the binds of it in containers see it
	Log        *slog.Logger // nil: nothing is logged
	// StateFile keeps the static addresses set on each interface, so the
	// next run removes those the config no longer has ("": none kept).
	StateFile string
	// ReadyFile is written once the static configuration is applied, every
	// run (DHCP leases may come later): the docker service waits for it
	// before dockerd picks its bridge's subnet ("": not written).
	ReadyFile string
	// OnReady, if set, is called once the interfaces present at the start
	// are configured (DHCP leases may come later).
	OnReady func()

	set map[string][]string // interface -> static addresses set on it

	mu      sync.Mutex
	dhcpDNS map[string][]string // interface -> nameservers from its lease
	dhcpDom map[string][]string
}

func (c *Configurator) log() *slog.Logger {
	if c.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Log
}

// Run configures every interface present, then every one that appears or
// is renamed later (a driver udev loads after this service started, a
// hot-plugged NIC), and keeps the DHCP leases, until ctx ends. Failures on
// one interface are logged and do not stop the others.
func (c *Configurator) Run(ctx context.Context) error {
	c.dhcpDNS, c.dhcpDom = map[string][]string{}, map[string][]string{}
	c.set = c.loadState()
	if err := c.writeResolv(); err != nil {
		c.log().Error("dns", "err", err)
	}
	// Subscribed before the first listing, so that a link made between the
	// two is not missed; the updates of links already configured are
	// told apart by their index and name.
	updates := make(chan netlink.LinkUpdate, 64)
	stop := make(chan struct{})
	defer close(stop)
	watching := true
	if err := netlink.LinkSubscribeWithOptions(updates, stop, netlink.LinkSubscribeOptions{
		ErrorCallback: func(err error) { c.log().Error("watch links", "err", err) },
	}); err != nil {
		c.log().Error("watch links: interfaces that appear later are not configured", "err", err)
		watching = false
	}
	links, err := netlink.LinkList()
	if err != nil {
		return fmt.Errorf("network: list interfaces: %w", err)
	}
	c.createVirtual(links)
	// Again, with the bonds, bridges and VLANs just made.
	if links, err = netlink.LinkList(); err != nil {
		return fmt.Errorf("network: list interfaces: %w", err)
	}
	w := &linkWatch{ctx: ctx, names: map[int]string{}, dhcp: map[int]context.CancelFunc{}}
	defer w.wg.Wait()
	defer w.stopAll()
	for _, l := range links {
		c.configure(w, l)
	}
	// Kept now, not when Run returns: the DHCP loops last as long as the
	// service, which may be killed rather than stopped.
	c.saveState()
	c.markReady()
	if c.OnReady != nil {
		c.OnReady()
	}
	if !watching {
		<-ctx.Done()
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case u, ok := <-updates:
			if !ok {
				c.log().Error("watch links: the kernel's link messages stopped; interfaces that appear later are not configured")
				<-ctx.Done()
				return nil
			}
			c.update(w, u)
		}
	}
}

// linkWatch is what Run knows of the links it has configured: each
// link's name by index, and the DHCP loop of each.
type linkWatch struct {
	ctx   context.Context
	names map[int]string
	dhcp  map[int]context.CancelFunc
	wg    sync.WaitGroup
}

// forget ends the DHCP loop of the link with index i, if it has one.
func (w *linkWatch) forget(i int) {
	if cancel, ok := w.dhcp[i]; ok {
		cancel()
		delete(w.dhcp, i)
	}
	delete(w.names, i)
}

func (w *linkWatch) stopAll() {
	for i := range w.dhcp {
		w.forget(i)
	}
}

// update acts on one link message: a link not seen before, or seen under
// another name, is configured (a renamed link's DHCP loop starts again
// under its new name); a removed one's DHCP loop ends.
func (c *Configurator) update(w *linkWatch, u netlink.LinkUpdate) {
	if u.Link == nil {
		return
	}
	attrs := u.Attrs()
	switch u.Header.Type {
	case unix.RTM_DELLINK:
		if name, ok := w.names[attrs.Index]; ok {
			c.log().Info("removed", "link", name)
			w.forget(attrs.Index)
		}
	case unix.RTM_NEWLINK:
		name, seen := w.names[attrs.Index]
		if seen && name == attrs.Name {
			return // a change of state, an address: configured already
		}
		if seen {
			c.log().Info("renamed", "link", attrs.Name, "was", name)
			w.forget(attrs.Index)
		}
		// The message's own copy may be of a moment ago (a rename
		// under way); the kernel's current one is configured.
		l, err := netlink.LinkByIndex(attrs.Index)
		if err != nil {
			return // gone again
		}
		c.joinVirtual(l)
		c.configure(w, l)
		c.saveState()
	}
}

// configure applies the config that matches the link, if one does:
// static settings, then a DHCP loop.
func (c *Configurator) configure(w *linkWatch, l netlink.Link) {
	attrs := l.Attrs()
	w.names[attrs.Index] = attrs.Name
	if attrs.Name == "lo" {
		if err := netlink.LinkSetUp(l); err != nil {
			c.log().Error("up", "link", "lo", "err", err)
		}
		return
	}
	ic, key, ok := matchLink(c.Config.Interfaces, l)
	if !ok {
		return
	}
	c.log().Info("configured", "link", attrs.Name, "by", "rancher.network.interfaces["+key+"]")
	if Enslaved(ic) {
		return // up and in its master (joinVirtual)
	}
	if err := c.static(l, ic); err != nil {
		c.log().Error("configure", "link", attrs.Name, "err", err)
	}
	if ic.DHCP {
		ctx, cancel := context.WithCancel(w.ctx)
		w.dhcp[attrs.Index] = cancel
		w.wg.Go(func() { c.dhcp(ctx, attrs.Name) })
	}
}

// markReady writes ReadyFile (the time, for whoever looks); a failure is
// logged: the docker service then starts after its own wait.
func (c *Configurator) markReady() {
	if c.ReadyFile == "" {
		return
	}
	if err := os.WriteFile(c.ReadyFile, []byte(time.Now().UTC().Format(time.RFC3339Nano)+"\n"), 0o644); err != nil {
		c.log().Error("ready file", "path", c.ReadyFile, "err", err)
	}
}

// loadState reads StateFile; a missing or unreadable one is empty (and,
// unreadable, reported).
func (c *Configurator) loadState() map[string][]string {
	m := map[string][]string{}
	if c.StateFile == "" {
		return m
	}
	b, err := os.ReadFile(c.StateFile)
	if err == nil {
		err = json.Unmarshal(b, &m)
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		c.log().Warn("addresses set before are not removed", "state", c.StateFile, "err", err)
		return map[string][]string{}
	}
	return m
}

// saveState writes StateFile whole (temp file and rename).
func (c *Configurator) saveState() {
	if c.StateFile == "" {
		return
	}
	b, err := json.Marshal(c.set)
	if err == nil {
		tmp := c.StateFile + ".tmp"
		if err = os.WriteFile(tmp, b, 0o644); err == nil {
			err = os.Rename(tmp, c.StateFile)
		}
	}
	if err != nil {
		c.log().Error("save state", "state", c.StateFile, "err", err)
	}
}

// stale returns the addresses of before (what the network service set on
// an interface the last time) that want no longer has. Only those are
// removed: an address another program added (kube-vip, keepalived, a
// user's ip addr add) is left alone.
func stale(before []string, want []*netlink.Addr) []string {
	keep := map[string]bool{}
	for _, a := range want {
		keep[a.IPNet.String()] = true
	}
	var out []string
	for _, a := range before {
		if !keep[a] {
			out = append(out, a)
		}
	}
	return out
}

// static sets the MTU, brings the link up, adds the static addresses and
// gateways, and removes the static addresses the config no longer has.
func (c *Configurator) static(l netlink.Link, ic config.Interface) error {
	var errs []error
	if ic.MTU > 0 {
		if err := netlink.LinkSetMTU(l, ic.MTU); err != nil {
			errs = append(errs, fmt.Errorf("mtu %d: %w", ic.MTU, err))
		}
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return fmt.Errorf("up: %w", err)
	}
	addrs := ic.Addresses
	if ic.Address != "" {
		addrs = append([]string{ic.Address}, addrs...)
	}
	var want []*netlink.Addr
	unparsed := false
	for _, a := range addrs {
		addr, err := netlink.ParseAddr(a)
		if err != nil {
			unparsed = true
			errs = append(errs, fmt.Errorf("address %q: want an address with its prefix length, such as 10.0.0.5/24", a))
			continue
		}
		want = append(want, addr)
	}
	// Dropped addresses go first: removing a subnet's first address can
	// take the others in that subnet with it (unless promote_secondaries),
	// and the wanted ones are added after. With an address that did not
	// parse, what is there stays.
	name := l.Attrs().Name
	if !unparsed {
		for _, a := range stale(c.set[name], want) {
			addr, err := netlink.ParseAddr(a)
			if err == nil {
				err = netlink.AddrDel(l, addr)
			}
			if err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
				errs = append(errs, fmt.Errorf("remove address %s: %w", a, err))
			} else {
				c.log().Info("address removed (no longer configured)", "link", name, "address", a)
			}
		}
		c.set[name] = nil
		for _, a := range want {
			c.set[name] = append(c.set[name], a.IPNet.String())
		}
	}
	for _, addr := range want {
		if err := netlink.AddrReplace(l, addr); err != nil {
			errs = append(errs, fmt.Errorf("address %s: %w", addr.IPNet, err))
		} else {
			c.log().Info("address", "link", name, "address", addr.IPNet.String())
		}
	}
	for _, gw := range []string{ic.Gateway, ic.GatewayIPv6} {
		if gw == "" {
			continue
		}
		if err := defaultRoute(l, net.ParseIP(gw)); err != nil {
			errs = append(errs, fmt.Errorf("gateway %s: %w", gw, err))
		}
	}
	return errors.Join(errs...)
}

func defaultRoute(l netlink.Link, gw net.IP) error {
	if gw == nil {
		return errors.New("not an IP address")
	}
	r := &netlink.Route{LinkIndex: l.Attrs().Index, Gw: gw}
	if gw.To4() != nil {
		r.Dst = &net.IPNet{IP: net.IPv4zero, Mask: net.CIDRMask(0, 32)}
	} else {
		r.Dst = &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}
	}
	return netlink.RouteReplace(r)
}

// dhcp gets a lease for the interface and renews it until ctx ends,
// starting over (with back-off) when a renewal fails.
func (c *Configurator) dhcp(ctx context.Context, name string) {
	wait := time.Second
	for ctx.Err() == nil {
		lease, err := c.request(ctx, name)
		if err != nil {
			c.log().Warn("dhcp failed", "link", name, "err", err, "retry_in", wait)
			sleep(ctx, wait)
			wait = min(wait*2, time.Minute)
			continue
		}
		wait = time.Second
		for ctx.Err() == nil {
			t := lease.ACK.IPAddressLeaseTime(time.Hour)
			sleep(ctx, t/2)
			if ctx.Err() != nil {
				return
			}
			lease, err = c.request(ctx, name)
			if err != nil {
				c.log().Warn("dhcp renew", "link", name, "err", err)
				break
			}
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func (c *Configurator) request(ctx context.Context, name string) (*nclient4.Lease, error) {
	cl, err := nclient4.New(name, nclient4.WithTimeout(5*time.Second), nclient4.WithRetry(3))
	if err != nil {
		return nil, err
	}
	defer func() { _ = cl.Close() }()
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	lease, err := cl.Request(rctx, dhcpv4.WithOption(dhcpv4.OptHostName(hostname())))
	if err != nil {
		return nil, err
	}
	if err := c.applyLease(name, lease.ACK); err != nil {
		return nil, err
	}
	return lease, nil
}

func hostname() string {
	h, _ := os.Hostname()
	return h
}

func (c *Configurator) applyLease(name string, ack *dhcpv4.DHCPv4) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return err
	}
	mask := ack.SubnetMask()
	if mask == nil {
		mask = ack.YourIPAddr.DefaultMask()
	}
	lt := ack.IPAddressLeaseTime(time.Hour)
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: ack.YourIPAddr, Mask: mask}, ValidLft: int(lt.Seconds()), PreferedLft: int(lt.Seconds())}
	if err := netlink.AddrReplace(l, addr); err != nil {
		return fmt.Errorf("address %s: %w", addr.IPNet, err)
	}
	attrs := []any{"link", name, "address", addr.IPNet.String(), "lease", lt}
	if routers := ack.Router(); len(routers) > 0 {
		if err := defaultRoute(l, routers[0]); err != nil {
			return fmt.Errorf("gateway %s: %w", routers[0], err)
		}
		attrs = append(attrs, "gateway", routers[0].String())
	}
	c.log().Info("dhcp", attrs...)
	var dns []string
	for _, ip := range ack.DNS() {
		dns = append(dns, ip.String())
	}
	c.mu.Lock()
	c.dhcpDNS[name] = dns
	if ds := ack.DomainSearch(); ds != nil {
		c.dhcpDom[name] = ds.Labels
	}
	c.mu.Unlock()
	return c.writeResolv()
}

// writeResolv writes the configured DNS, or when none is configured, what
// the DHCP leases gave.
func (c *Configurator) writeResolv() error {
	ns, search := c.Config.DNS.Nameservers, c.Config.DNS.Search
	if len(ns) == 0 {
		c.mu.Lock()
		names := make([]string, 0, len(c.dhcpDNS))
		for n := range c.dhcpDNS {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			ns = append(ns, c.dhcpDNS[n]...)
			if len(search) == 0 {
				search = append(search, c.dhcpDom[n]...)
			}
		}
		c.mu.Unlock()
	}
	if len(ns) == 0 && len(search) == 0 {
		return nil
	}
	// In place, not by rename: containers bind this file.
	return os.WriteFile(c.ResolvPath, []byte(ResolvConf(ns, search)), 0o644)
}
