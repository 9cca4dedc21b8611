// Command kine is kine (github.com/k3s-io/kine), the etcd API over SQL,
// with its SQLite driver only: the datastore of a server with `datastore:
// sqlite` (cmd/kube/node starts it). Upstream's command links all of
// kine's drivers (MySQL, PostgreSQL, NATS, and t4 with Pebble and S3),
// twice the size for drivers a node never uses. The flags are upstream's,
// less those only the other drivers read; kine's packages do the work.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/k3s-io/kine/pkg/drivers"
	"github.com/k3s-io/kine/pkg/drivers/generic"
	_ "github.com/k3s-io/kine/pkg/drivers/sqlite" // the one driver
	"github.com/k3s-io/kine/pkg/metrics"
	"github.com/k3s-io/kine/pkg/server"
	"github.com/k3s-io/kine/pkg/tls"
	"github.com/k3s-io/kine/pkg/version"
	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/writer"
	"go.etcd.io/etcd/server/v3/embed"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
)

// options are kine's flags that the SQLite driver and the server read,
// with upstream's names and defaults.
type options struct {
	listen, endpoint, logFormat   string
	serverTLS                     tls.Config
	metrics                       metrics.Config
	metricsIgnoreTLS              bool
	pool                          generic.ConnectionPoolConfig
	pollInterval, notifyInterval  time.Duration
	compactInterval               time.Duration
	compactTimeout                time.Duration
	compactJitter                 int
	compactMinRetain, compactSize int64
	pollBatchSize                 int64
	etcdVersion                   string
	debug, version                bool
}

// parse reads kine's command line. An unknown flag, a positional argument
// or an endpoint of another driver is an error that names it.
func parse(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("kine", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.listen, "listen-address", "0.0.0.0:2379", "address for etcd clients (host:port, or unix://PATH)")
	fs.StringVar(&o.endpoint, "endpoint", "", "the database: sqlite://PATH?PARAMS (default ./db/state.db)")
	fs.StringVar(&o.logFormat, "log-format", "plain", "log format: plain or json")
	fs.StringVar(&o.metrics.ServerAddress, "metrics-bind-address", ":8080", "address of the metrics endpoint; 0 for none")
	fs.BoolVar(&o.metrics.EnableProfiling, "metrics-enable-profiling", false, "serve net/http/pprof on the metrics address")
	fs.BoolVar(&o.metricsIgnoreTLS, "metrics-ignore-tls-config", false, "serve metrics without the server's TLS")
	fs.StringVar(&o.serverTLS.CertFile, "server-cert-file", "", "certificate for etcd clients")
	fs.StringVar(&o.serverTLS.KeyFile, "server-key-file", "", "key for etcd clients")
	fs.StringVar(&o.serverTLS.TrustedCAFile, "trusted-ca-file", "", "CA that etcd clients' certificates must chain to")
	fs.IntVar(&o.pool.MaxIdle, "datastore-max-idle-connections", 20, "idle connections kept (0: the default, <0: none)")
	fs.IntVar(&o.pool.MaxOpen, "datastore-max-open-connections", 0, "open connections at most (<=0: no limit)")
	fs.DurationVar(&o.pool.MaxLifetime, "datastore-connection-max-lifetime", 0, "a connection's longest reuse (<=0: no limit)")
	fs.DurationVar(&o.pool.MaxIdleTime, "datastore-connection-max-idle-time", 2*time.Minute, "a connection's longest idle time (<=0: no limit)")
	fs.DurationVar(&o.pollInterval, "datastore-poll-interval", time.Second, "interval of the datastore's polls without local inserts")
	fs.DurationVar(&metrics.SlowSQLThreshold, "slow-sql-threshold", time.Second, "SQL slower than this is logged at info (<=0: never)")
	fs.DurationVar(&metrics.SlowSQLWarningThreshold, "slow-sql-warning-threshold", 5*time.Second, "SQL slower than this is logged at warning")
	fs.DurationVar(&o.notifyInterval, "watch-progress-notify-interval", 5*time.Second, "interval of watch progress notifications")
	fs.StringVar(&o.etcdVersion, "emulated-etcd-version", "3.6.11", "etcd version the status call reports")
	fs.DurationVar(&o.compactInterval, "compact-interval", 0, "interval of kine's own compaction (0: left to the API server)")
	fs.IntVar(&o.compactJitter, "compact-interval-jitter", 0, "percent of jitter on the compaction interval (0-99)")
	fs.DurationVar(&o.compactTimeout, "compact-timeout", 5*time.Second, "timeout of a compaction")
	fs.Int64Var(&o.compactMinRetain, "compact-min-retain", 1000, "revisions a compaction keeps at least")
	fs.Int64Var(&o.compactSize, "compact-batch-size", 1000, "revisions compacted in one batch")
	fs.Int64Var(&o.pollBatchSize, "poll-batch-size", 500, "revisions read in one poll")
	fs.BoolVar(&o.debug, "debug", false, "debug and trace logging to stdout")
	fs.BoolVar(&o.version, "version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() != 0 {
		return o, fmt.Errorf("kine takes flags only, not %q", fs.Arg(0))
	}
	if o.logFormat != "plain" && o.logFormat != "json" {
		return o, fmt.Errorf("--log-format %q: want plain or json", o.logFormat)
	}
	if o.endpoint != "" {
		scheme, _, ok := strings.Cut(o.endpoint, "://")
		if !ok {
			return o, fmt.Errorf("--endpoint: want sqlite://PATH, not a value without a scheme")
		}
		if scheme != "sqlite" && scheme != "litestream" {
			return o, fmt.Errorf("--endpoint: the %q driver is not in this kine, which has SQLite only (sqlite://PATH, or litestream://PATH for its Litestream mode)", scheme)
		}
	}
	return o, nil
}

func main() {
	o, err := parse(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "kine:", err)
		os.Exit(2)
	}
	if o.version {
		fmt.Printf("kine %s (SQLite only)\n", version.Version)
		return
	}
	setupLogging(o)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil && !errors.Is(err, context.Canceled) {
		logrus.Fatal(err)
	}
}

// setupLogging logs as upstream's kine: info and up to stderr, debug and
// trace to stdout with --debug.
func setupLogging(o options) {
	if o.logFormat == "json" {
		logrus.SetFormatter(&logrus.JSONFormatter{TimestampFormat: time.RFC3339Nano,
			FieldMap: logrus.FieldMap{logrus.FieldKeyLevel: "severity", logrus.FieldKeyMsg: "message"}})
	} else {
		logrus.SetFormatter(&logrus.TextFormatter{FullTimestamp: true, TimestampFormat: time.RFC3339Nano})
	}
	logrus.SetOutput(io.Discard)
	logrus.AddHook(&writer.Hook{Writer: os.Stderr, LogLevels: []logrus.Level{logrus.PanicLevel, logrus.FatalLevel, logrus.ErrorLevel, logrus.WarnLevel, logrus.InfoLevel}})
	if o.debug {
		logrus.SetLevel(logrus.TraceLevel)
		logrus.AddHook(&writer.Hook{Writer: os.Stdout, LogLevels: []logrus.Level{logrus.DebugLevel, logrus.TraceLevel}})
	}
}

// run serves the etcd API over the SQLite backend until ctx ends.
func run(ctx context.Context, o options) error {
	if !o.metricsIgnoreTLS {
		o.metrics.ServerTLSConfig = o.serverTLS
	}
	metrics.RegisterCoreCollectors()
	metrics.Registry.MustRegister(metrics.SQLTotal, metrics.SQLTime, metrics.CompactTotal, metrics.InsertErrorsTotal)

	var wg sync.WaitGroup
	bctx, bcancel := context.WithCancel(context.Background())
	defer bcancel()
	_, backend, err := drivers.New(bctx, &wg, &drivers.Config{
		MetricsRegisterer:     metrics.Registry,
		Endpoint:              o.endpoint,
		ConnectionPoolConfig:  o.pool,
		CompactInterval:       o.compactInterval,
		CompactIntervalJitter: o.compactJitter,
		CompactTimeout:        o.compactTimeout,
		CompactMinRetain:      o.compactMinRetain,
		CompactBatchSize:      o.compactSize,
		PollBatchSize:         o.pollBatchSize,
		PollInterval:          o.pollInterval,
	})
	if err != nil {
		return fmt.Errorf("open the SQLite datastore: %w", err)
	}
	srv, err := grpcServer(o.serverTLS)
	if err != nil {
		return fmt.Errorf("the etcd API's TLS: %w", err)
	}
	if err := backend.Start(bctx); err != nil {
		return fmt.Errorf("start the SQLite datastore: %w", err)
	}
	scheme, network, address := listenAddress(o)
	server.New(backend, scheme, o.notifyInterval, o.etcdVersion).Register(srv)
	if network == "unix" {
		if err := os.Remove(address); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("remove the old socket: %w", err)
		}
	}
	l, err := (&net.ListenConfig{}).Listen(bctx, network, address)
	if err != nil {
		return fmt.Errorf("listen for etcd clients: %w", err)
	}
	if network == "unix" {
		if err := os.Chmod(address, 0o600); err != nil {
			return fmt.Errorf("the socket's mode: %w", err)
		}
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	logrus.Infof("Kine available at %s://%s", scheme, l.Addr())
	go metrics.Serve(ctx, o.metrics)

	select {
	case err = <-served:
		err = fmt.Errorf("the etcd API's server stopped: %w", err)
	case <-ctx.Done():
		logrus.Info("stopping: up to 2s for the etcd API's clients")
		t := time.AfterFunc(2*time.Second, srv.Stop)
		srv.GracefulStop()
		t.Stop()
		err = ctx.Err()
	}
	bcancel()
	wg.Wait()
	return err
}

// listenAddress is --listen-address as the scheme kine reports (unix or
// http, with an s for TLS) and the listener's network and address.
func listenAddress(o options) (scheme, network, address string) {
	scheme, network, address = "http", "tcp", o.listen
	if rest, ok := strings.CutPrefix(o.listen, "unix://"); ok {
		scheme, network, address = "unix", "unix", rest
	} else if _, rest, ok := strings.Cut(o.listen, "://"); ok {
		address = rest
	}
	if o.serverTLS.CertFile != "" && o.serverTLS.KeyFile != "" {
		scheme += "s"
	}
	return scheme, network, address
}

// grpcServer is an etcd API server with etcd's own limits and keepalives.
func grpcServer(t tls.Config) (*grpc.Server, error) {
	opts := []grpc.ServerOption{
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: embed.DefaultGRPCKeepAliveMinTime}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: embed.DefaultGRPCKeepAliveInterval, Timeout: embed.DefaultGRPCKeepAliveTimeout}),
		grpc.MaxConcurrentStreams(embed.DefaultMaxConcurrentStreams),
		grpc.MaxRecvMsgSize(int(embed.DefaultMaxRequestBytes) + 512*1024),
		grpc.MaxSendMsgSize(1<<31 - 1),
	}
	if t.CertFile != "" && t.KeyFile != "" {
		c, err := t.ServerConfig()
		if err != nil {
			return nil, err
		}
		opts = append(opts, grpc.Creds(credentials.NewTLS(c)))
	}
	return grpc.NewServer(opts...), nil
}
