package main

import (
	"context"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

func TestParseRefusesWhatItCannotServe(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--endpoint=mysql://u@tcp(db)/k"}, `the "mysql" driver is not in this kine`},
		{[]string{"--endpoint=/var/db"}, "want sqlite://PATH"},
		{[]string{"--endpoint=postgres://u@db/k"}, `the "postgres" driver is not in this kine`},
		{[]string{"--s3-bucket=b"}, "s3-bucket"},
		{[]string{"--log-format=xml"}, `--log-format "xml"`},
		{[]string{"serve"}, `flags only, not "serve"`},
	} {
		_, err := parse(c.args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("parse(%q) = %v, want an error with %q", c.args, err, c.want)
		}
	}
}

func TestParseTakesTheNodesFlags(t *testing.T) {
	o, err := parse([]string{"--endpoint=sqlite:///x/state.db?_journal_mode=WAL", "--listen-address=127.0.0.1:2379",
		"--metrics-bind-address=0", "--compact-interval=5m", "--debug"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.listen != "127.0.0.1:2379" || o.metrics.ServerAddress != "0" || o.compactInterval != 5*time.Minute || !o.debug {
		t.Errorf("parsed %+v", o)
	}
	if o.pollBatchSize != 500 || o.etcdVersion != "3.6.11" {
		t.Errorf("defaults lost: %+v", o)
	}
	for listen, want := range map[string][3]string{
		"127.0.0.1:2379":        {"http", "tcp", "127.0.0.1:2379"},
		"unix:///run/kine.sock": {"unix", "unix", "/run/kine.sock"},
		"http://0.0.0.0:2379":   {"http", "tcp", "0.0.0.0:2379"},
	} {
		s, n, a := listenAddress(options{listen: listen})
		if [3]string{s, n, a} != want {
			t.Errorf("listenAddress(%q) = %s %s %s, want %v", listen, s, n, a, want)
		}
	}
}

// TestServesTheEtcdAPIOverSQLite runs the server on a new database and
// writes, reads and watches a key with etcd's own client.
func TestServesTheEtcdAPIOverSQLite(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	db := filepath.Join(t.TempDir(), "state.db")
	o, err := parse([]string{"--endpoint=sqlite://" + db + "?_journal_mode=WAL", "--listen-address=" + addr, "--metrics-bind-address=0"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, o) }()
	defer func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("run ended with %v, want context.Canceled", err)
		}
	}()

	cl, err := clientv3.New(clientv3.Config{Endpoints: []string{"http://" + addr}, DialTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	tctx, tcancel := context.WithTimeout(ctx, 30*time.Second)
	defer tcancel()
	var put *clientv3.TxnResponse
	for {
		// kine takes a create as a transaction on the key's mod revision.
		put, err = cl.Txn(tctx).If(clientv3.Compare(clientv3.ModRevision("/registry/a"), "=", 0)).
			Then(clientv3.OpPut("/registry/a", "one")).Commit()
		if err == nil || tctx.Err() != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil || !put.Succeeded {
		t.Fatalf("create /registry/a: %v (%+v)", err, put)
	}
	w := cl.Watch(tctx, "/registry/", clientv3.WithPrefix(), clientv3.WithRev(put.Header.Revision))
	get, err := cl.Get(tctx, "/registry/a")
	if err != nil || len(get.Kvs) != 1 || string(get.Kvs[0].Value) != "one" {
		t.Fatalf("get /registry/a = %+v, %v", get, err)
	}
	select {
	case ev := <-w:
		if len(ev.Events) == 0 || string(ev.Events[0].Kv.Key) != "/registry/a" {
			t.Errorf("watch: %+v", ev)
		}
	case <-tctx.Done():
		t.Fatal("the watch saw no event")
	}
}
