//go:build e2e

package e2e

import (
	"fmt"
	"net"
	"sync"
	"testing"
)

// Hub is an Ethernet hub for machines: each machine with Options.Hub has
// a NIC (eth1) whose frames QEMU sends as UDP datagrams to the hub, which
// sends each one on to every other machine. It is the cluster network of
// multi-node tests: one link, as a switch of real nodes is.
type Hub struct {
	t     *testing.T
	conn  *net.UDPConn
	mu    sync.Mutex
	peers map[string]*net.UDPAddr
}

// NewHub starts a hub on a free UDP port of 127.0.0.1; it stops when the
// test ends.
func NewHub(t *testing.T) *Hub {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	h := &Hub{t: t, conn: c, peers: map[string]*net.UDPAddr{}}
	t.Cleanup(func() { c.Close() })
	go h.run()
	return h
}

func (h *Hub) run() {
	buf := make([]byte, 65536)
	for {
		n, from, err := h.conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		h.mu.Lock()
		h.peers[from.String()] = from
		for k, p := range h.peers {
			if k != from.String() {
				h.conn.WriteToUDP(buf[:n], p)
			}
		}
		h.mu.Unlock()
	}
}

// netdev is the QEMU arguments of a machine's NIC on the hub: a UDP
// socket of its own, sending to the hub. The hub learns the machine's
// port from its first frame; mac tells the machines apart.
func (h *Hub) netdev(id string, mac string) []string {
	local := freeUDPPort(h.t)
	return []string{
		"-netdev", fmt.Sprintf("socket,id=%s,udp=%s,localaddr=127.0.0.1:%d", id, h.conn.LocalAddr(), local),
		"-device", fmt.Sprintf("virtio-net-pci,netdev=%s,mac=%s", id, mac),
	}
}

func freeUDPPort(t *testing.T) int {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}
