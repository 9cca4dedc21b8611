package network

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/rosos/ros/config"
)

// Virtual is the plan of the virtual links a config asks for: bonds (an
// entry with bond_opts, or a name other entries give in bond:), bridges
// (an entry with bridge: true, or a name given in bridge:), and VLANs (an
// interface's vlans:).
type Virtual struct {
	Bonds   map[string]map[string]string // bond -> its options
	Bridges []string
}

// PlanVirtual reads the bonds and bridges of a config.
func PlanVirtual(ifaces map[string]config.Interface) Virtual {
	v := Virtual{Bonds: map[string]map[string]string{}}
	bridges := map[string]bool{}
	for name, ic := range ifaces {
		if len(ic.BondOpts) > 0 {
			v.Bonds[name] = ic.BondOpts
		}
		if ic.Bond != "" {
			if _, ok := v.Bonds[ic.Bond]; !ok {
				v.Bonds[ic.Bond] = ifaces[ic.Bond].BondOpts
			}
		}
		switch ic.Bridge {
		case "", "false":
		case "true":
			bridges[name] = true
		default:
			bridges[ic.Bridge] = true
		}
	}
	for b := range bridges {
		v.Bridges = append(v.Bridges, b)
	}
	sort.Strings(v.Bridges)
	return v
}

// Enslaved reports whether an interface's entry puts it in a bond or a
// bridge: it is then only brought up, its addresses are the master's.
func Enslaved(ic config.Interface) bool {
	return ic.Bond != "" || (ic.Bridge != "" && ic.Bridge != "true" && ic.Bridge != "false")
}

// bond builds a bond link from its options.
func bond(name string, opts map[string]string) (*netlink.Bond, error) {
	b := netlink.NewLinkBond(netlink.LinkAttrs{Name: name})
	var errs []error
	for k, val := range opts {
		switch k {
		case "mode":
			m := netlink.StringToBondMode(val)
			if m == netlink.BOND_MODE_UNKNOWN {
				errs = append(errs, fmt.Errorf("bond_opts.mode %q: want balance-rr, active-backup, balance-xor, broadcast, 802.3ad, balance-tlb or balance-alb", val))
			}
			b.Mode = m
		case "miimon", "updelay", "downdelay":
			n, err := strconv.Atoi(val)
			if err != nil || n < 0 {
				errs = append(errs, fmt.Errorf("bond_opts.%s %q: want milliseconds", k, val))
				continue
			}
			switch k {
			case "miimon":
				b.Miimon = n
			case "updelay":
				b.UpDelay = n
			case "downdelay":
				b.DownDelay = n
			}
		case "lacp_rate":
			b.LacpRate = netlink.StringToBondLacpRate(val)
		case "xmit_hash_policy":
			b.XmitHashPolicy = netlink.StringToBondXmitHashPolicy(val)
		default:
			errs = append(errs, fmt.Errorf("bond_opts.%s: not supported (mode, miimon, updelay, downdelay, lacp_rate, xmit_hash_policy)", k))
		}
	}
	return b, errors.Join(errs...)
}

// addLink creates a link unless one of that name exists.
func addLink(l netlink.Link) error {
	if _, err := netlink.LinkByName(l.Attrs().Name); err == nil {
		return nil
	}
	if err := netlink.LinkAdd(l); err != nil {
		return fmt.Errorf("create %s: %w", l.Attrs().Name, err)
	}
	return nil
}

// createVirtual makes the bonds and bridges, puts the interfaces that ask
// for it in them, and makes the VLANs.
func (c *Configurator) createVirtual(links []netlink.Link) {
	v := PlanVirtual(c.Config.Interfaces)
	for _, name := range slices.Sorted(maps.Keys(v.Bonds)) {
		b, err := bond(name, v.Bonds[name])
		if err != nil {
			c.log().Error("configure", "link", name, "err", err)
		}
		if err := ensureBond(b); err != nil {
			c.log().Error("configure", "link", name, "err", err)
		} else {
			c.log().Info("bond", "link", name, "mode", b.Mode)
		}
	}
	for _, name := range v.Bridges {
		if err := addLink(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}); err != nil {
			c.log().Error("configure", "link", name, "err", err)
		} else {
			c.log().Info("bridge", "link", name)
		}
	}
	for _, l := range links {
		c.joinVirtual(l)
	}
}

// joinVirtual puts the link in the bond or bridge its entry names and
// makes its VLANs.
func (c *Configurator) joinVirtual(l netlink.Link) {
	attrs := l.Attrs()
	ic, _, ok := matchLink(c.Config.Interfaces, l)
	if !ok {
		return
	}
	master := ic.Bond
	if master == "" && Enslaved(ic) {
		master = ic.Bridge
	}
	if master != "" {
		if err := enslave(l, master); err != nil {
			c.log().Error("configure", "link", attrs.Name, "err", err)
		} else {
			c.log().Info("enslaved", "link", attrs.Name, "master", master)
		}
	}
	vlans, _ := config.ParseVlans(ic.Vlans)
	for _, vl := range vlans {
		name := vl.Name
		if name == "" {
			name = fmt.Sprintf("%s.%d", attrs.Name, vl.ID)
		}
		if err := netlink.LinkSetUp(l); err != nil {
			c.log().Error("up", "link", attrs.Name, "err", err)
		}
		if err := addLink(&netlink.Vlan{LinkAttrs: netlink.LinkAttrs{Name: name, ParentIndex: attrs.Index}, VlanId: vl.ID}); err != nil {
			c.log().Error("configure", "link", name, "err", err)
		} else {
			c.log().Info("vlan", "link", name, "id", vl.ID, "parent", attrs.Name)
		}
	}
}

// ensureBond creates the bond b. Loading the bonding module (which the
// first bond's creation does) makes a bond0 of its own in balance-rr: a
// bond of that name with other settings and no members yet is made again
// (a bond's mode cannot change once it has members).
func ensureBond(b *netlink.Bond) error {
	err := netlink.LinkAdd(b)
	if err == nil || !errors.Is(err, unix.EEXIST) {
		return err
	}
	old, err := netlink.LinkByName(b.Name)
	if err != nil {
		return err
	}
	ob, ok := old.(*netlink.Bond)
	if !ok {
		return fmt.Errorf("%s exists and is not a bond (%s)", b.Name, old.Type())
	}
	same := (b.Mode < 0 || ob.Mode == b.Mode) && (b.Miimon < 0 || ob.Miimon == b.Miimon)
	if same || hasMembers(old) {
		return nil
	}
	if err := netlink.LinkDel(old); err != nil {
		return fmt.Errorf("remove to make again: %w", err)
	}
	return netlink.LinkAdd(b)
}

// hasMembers reports whether a master link has links in it.
func hasMembers(master netlink.Link) bool {
	links, err := netlink.LinkList()
	if err != nil {
		return true
	}
	for _, l := range links {
		if l.Attrs().MasterIndex == master.Attrs().Index {
			return true
		}
	}
	return false
}

func enslave(l netlink.Link, master string) error {
	m, err := netlink.LinkByName(master)
	if err != nil {
		return fmt.Errorf("master %s: %w", master, err)
	}
	if l.Attrs().MasterIndex == m.Attrs().Index {
		return nil
	}
	if _, isBond := m.(*netlink.Bond); isBond {
		// A bond takes only links that are down.
		if err := netlink.LinkSetDown(l); err != nil {
			return fmt.Errorf("down: %w", err)
		}
	}
	if err := netlink.LinkSetMaster(l, m); err != nil {
		return fmt.Errorf("into %s: %w", master, err)
	}
	return netlink.LinkSetUp(l)
}
