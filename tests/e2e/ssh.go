//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// Key is an SSH key pair made for a test.
type Key struct {
	priv       ed25519.PrivateKey
	Signer     ssh.Signer
	Authorized string // the public key, as a line of authorized_keys
}

// NewKey makes an ed25519 key pair.
func NewKey(t *testing.T) Key {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	// The private key is kept in the test's temporary directory, so that
	// a person can log in to a machine of a running test to look around:
	// ssh -i /tmp/TestX.../NNN/id_ed25519 -p PORT rancher@127.0.0.1
	if block, err := ssh.MarshalPrivateKey(priv, ""); err == nil {
		_ = os.WriteFile(filepath.Join(t.TempDir(), "id_ed25519"), pem.EncodeToMemory(block), 0o600)
	}
	return Key{priv: priv, Signer: signer, Authorized: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp))) + " e2e@" + t.Name()}
}

// SSH is a login session on the machine.
type SSH struct {
	t      *testing.T
	client *ssh.Client
}

// SSH logs in as user with key, retrying until timeout (the node may still
// be booting).
func (m *Machine) SSH(user string, key Key, timeout time.Duration) *SSH {
	m.t.Helper()
	cfg := &ssh.ClientConfig{
		User:            user,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(key.Signer)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), // a fresh test node: no known host key
		Timeout:         20 * time.Second,
	}
	deadline := time.Now().Add(timeout)
	addr := fmt.Sprintf("127.0.0.1:%d", m.SSHPort)
	first, err := waitBanner(addr, deadline, m.exitedCh())
	if err != nil {
		m.t.Fatalf("ssh %s@%s: %v", user, addr, err)
	}
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-m.exitedCh():
			m.t.Fatalf("QEMU exited while waiting for SSH")
		default:
		}
		var c *ssh.Client
		if first != nil {
			c, err = login(first, addr, cfg, time.Minute)
			first = nil
		} else {
			c, err = ssh.Dial("tcp", addr, cfg)
		}
		if err == nil {
			s := &SSH{t: m.t, client: c}
			m.t.Cleanup(func() { c.Close() })
			go keepalive(c)
			return s
		}
		last = err
		time.Sleep(2 * time.Second)
	}
	m.t.Fatalf("ssh %s@127.0.0.1:%d: no login within %s: %v", user, m.SSHPort, timeout, last)
	return nil
}

// waitBanner returns the first connection on which an SSH server
// answered at addr, its banner's first four bytes ("SSH-") read.
// QEMU's user network accepts on the host at once and only then connects
// to the guest, retrying its SYN with a growing back-off while the guest
// is not up: a client waiting on one connection gets in only at the next
// retry, seconds after sshd listens. So a new connection is opened every
// second and the first banner ends the wait: the first login comes within
// about a second of sshd's start, on any system booted by this harness
// alike. Only the last openProbes are kept (a slow guest may take seconds
// to answer one): with every one kept, the dozen or more still retrying
// when sshd came up each reached it, and each cost the guest an
// sshd-session process while the login was under way. The login goes on
// over the connection that answered, as one client's would: a second
// connection would cost the guest another sshd-session.
func waitBanner(addr string, deadline time.Time, exited <-chan struct{}) (net.Conn, error) {
	const openProbes = 3
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	found := make(chan net.Conn, 1)
	probe := func(ctx context.Context) {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return
		}
		stop := context.AfterFunc(ctx, func() { c.Close() })
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		buf := make([]byte, 4)
		if _, err := io.ReadFull(c, buf); err == nil && string(buf) == "SSH-" && stop() {
			_ = c.SetReadDeadline(time.Time{})
			select {
			case found <- c:
				return
			default: // another probe answered first
			}
		}
		stop()
		c.Close()
	}
	var open []context.CancelFunc
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		if len(open) == openProbes {
			open[0]()
			open = open[1:]
		}
		pctx, pcancel := context.WithCancel(ctx)
		open = append(open, pcancel)
		go probe(pctx)
		select {
		case c := <-found:
			return c, nil
		case <-exited:
			return nil, fmt.Errorf("QEMU exited while waiting for SSH")
		case <-ctx.Done():
			return nil, fmt.Errorf("no SSH banner by %s", deadline.Format(time.TimeOnly))
		case <-tick.C:
		}
	}
}

// bannerConn is a connection whose first bytes were read by waitBanner:
// they are read again before the rest.
type bannerConn struct {
	net.Conn
	r io.Reader
}

func (c *bannerConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// login logs in over a connection that answered with "SSH-" (already
// read), within timeout.
func login(c net.Conn, addr string, cfg *ssh.ClientConfig, timeout time.Duration) (*ssh.Client, error) {
	_ = c.SetDeadline(time.Now().Add(timeout))
	conn, chans, reqs, err := ssh.NewClientConn(&bannerConn{Conn: c, r: io.MultiReader(strings.NewReader("SSH-"), c)}, addr, cfg)
	if err != nil {
		c.Close()
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return ssh.NewClient(conn, chans, reqs), nil
}

// keepalive closes the connection when the node stops answering (it was
// reset or powered off under it), so that a command in flight fails
// instead of waiting forever on a TCP connection nobody will close.
func keepalive(c *ssh.Client) {
	for {
		time.Sleep(15 * time.Second)
		done := make(chan error, 1)
		go func() {
			_, _, err := c.SendRequest("keepalive@openssh.com", true, nil)
			done <- err
		}()
		select {
		case err := <-done:
			if err != nil {
				c.Close()
				return
			}
		case <-time.After(45 * time.Second):
			c.Close()
			return
		}
	}
}

// AuthMethods reports what the SSH server let a client without a key try:
// the client offers a password, and the error says which methods were
// attempted ("password" appears only if the server offered it).
func (m *Machine) AuthMethods(user string) string {
	m.t.Helper()
	cfg := &ssh.ClientConfig{
		User: user,
		Auth: []ssh.AuthMethod{
			ssh.Password("not-the-password"),
			ssh.KeyboardInteractive(func(string, string, []string, []bool) ([]string, error) { return nil, nil }),
		},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(),
		Timeout:         20 * time.Second,
	}
	c, err := ssh.Dial("tcp", net.JoinHostPort("127.0.0.1", fmt.Sprint(m.SSHPort)), cfg)
	if err == nil {
		c.Close()
		m.t.Fatalf("ssh %s: a login without a key succeeded", user)
	}
	return err.Error()
}

// Run runs cmd (a shell command line) and returns its output (stdout and
// stderr) and error.
func (s *SSH) Run(cmd string) (string, error) {
	return s.RunInput(cmd, nil)
}

// RunInput is Run with stdin.
func (s *SSH) RunInput(cmd string, stdin io.Reader) (string, error) {
	sess, err := s.client.NewSession()
	if err != nil {
		return "", fmt.Errorf("ssh session: %w", err)
	}
	defer sess.Close()
	// One buffer for both streams, behind a lock: the session copies them
	// in two goroutines, and bytes.Buffer's ReadFrom (which io.Copy uses)
	// loses data when two run at once.
	out := &lockedBuffer{}
	sess.Stdout, sess.Stderr, sess.Stdin = out, out, stdin
	err = sess.Run(cmd)
	return out.String(), err
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// MustRun runs cmd and fails the test if it fails.
func (s *SSH) MustRun(cmd string) string {
	s.t.Helper()
	out, err := s.Run(cmd)
	if err != nil {
		s.t.Fatalf("%s: %v\n%s", cmd, err, out)
	}
	return out
}

// Eventually runs cmd until check accepts its output or timeout passes.
func (s *SSH) Eventually(cmd string, timeout time.Duration, check func(out string) bool) string {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	var out string
	for {
		out, _ = s.Run(cmd)
		if check(out) {
			return out
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s: not as expected within %s; last output:\n%s", cmd, timeout, out)
		}
		time.Sleep(2 * time.Second)
	}
}

// SeedConfig is a #cloud-config that authorizes key for rancher, with
// extra lines (YAML at the top level) after it.
func SeedConfig(key Key, extra string) string {
	return fmt.Sprintf("#cloud-config\nssh_authorized_keys:\n  - %s\n%s", key.Authorized, extra)
}

// Close ends the session.
func (s *SSH) Close() { s.client.Close() }

// RunUntil starts cmd and returns once its output so far satisfies match
// (true), or the command ended or timeout passed (false), with the output
// so far. The command keeps running: a test pulls the plug mid-way.
func (s *SSH) RunUntil(cmd string, timeout time.Duration, match func(out string) bool) (string, bool) {
	s.t.Helper()
	sess, err := s.client.NewSession()
	if err != nil {
		s.t.Fatalf("ssh session: %v", err)
	}
	out := &lockedBuffer{}
	sess.Stdout, sess.Stderr = out, out
	if err := sess.Start(cmd); err != nil {
		s.t.Fatalf("%s: %v", cmd, err)
	}
	done := make(chan struct{})
	go func() { sess.Wait(); close(done) }()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if o := out.String(); match(o) {
			return o, true
		}
		select {
		case <-done:
			return out.String(), match(out.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
	return out.String(), false
}
