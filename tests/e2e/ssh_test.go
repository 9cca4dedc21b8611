//go:build e2e

package e2e

import (
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// The harness's login: probes until a server answers (here it starts
// listening 1.5 s in), then logs in over the connection that answered,
// so the server sees one connection, not a probe and a login.
func TestLoginOverBannerConnection(t *testing.T) {
	_, hostPriv, _ := ed25519.GenerateKey(rand.Reader)
	hostKey, err := ssh.NewSignerFromKey(hostPriv)
	if err != nil {
		t.Fatal(err)
	}
	key := NewKey(t)
	srv := &ssh.ServerConfig{PublicKeyCallback: func(_ ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
		if string(k.Marshal()) == string(key.Signer.PublicKey().Marshal()) {
			return nil, nil
		}
		return nil, net.ErrClosed
	}}
	srv.AddHostKey(hostKey)
	// A port nobody listens on yet.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	var conns atomic.Int32
	go func() {
		time.Sleep(1500 * time.Millisecond)
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Error(err)
			return
		}
		t.Cleanup(func() { l.Close() })
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				sc, chans, reqs, err := ssh.NewServerConn(c, srv)
				if err != nil {
					return
				}
				go ssh.DiscardRequests(reqs)
				for ch := range chans {
					ch.Reject(ssh.Prohibited, "no sessions")
				}
				sc.Close()
			}()
		}
	}()
	c, err := waitBanner(addr, time.Now().Add(30*time.Second), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &ssh.ClientConfig{User: "rancher", Auth: []ssh.AuthMethod{ssh.PublicKeys(key.Signer)}, HostKeyCallback: ssh.FixedHostKey(hostKey.PublicKey())}
	client, err := login(c, addr, cfg, 10*time.Second)
	if err != nil {
		t.Fatalf("login over the probe's connection: %v", err)
	}
	defer client.Close()
	if n := conns.Load(); n != 1 {
		t.Errorf("the server saw %d connections, want 1", n)
	}
}
