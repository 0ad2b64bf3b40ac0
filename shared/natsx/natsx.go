// Package natsx embeds nats-server in a service (the edge appliance and the cloud hub)
// with its log routed through slog and start-up failures returned as errors.
package natsx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// readyTimeout bounds how long the embedded server may take to open its listeners
// after Start (JetStream recovery happens inside Start, before this wait).
const readyTimeout = 10 * time.Second

// StartServer starts an embedded nats-server and waits until every listener is
// open. A listener that cannot bind (a port in use) or JetStream that cannot start
// comes back as an error; nats-server's own logger would exit the process instead.
func StartServer(opts *server.Options, log *slog.Logger) (*server.Server, error) {
	opts.NoSigs = true // the process's signals belong to its main
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("configure nats server: %w", err)
	}
	nl := &natsLog{log: log}
	ns.SetLoggerV2(nl, log.Enabled(context.Background(), slog.LevelDebug), false, false)
	ns.Start()
	err = nl.fatalErr()
	if err == nil && !ns.ReadyForConnections(readyTimeout) {
		err = nl.fatalErr()
		if err == nil {
			err = fmt.Errorf("not ready for connections after %v", readyTimeout)
		}
	}
	if err == nil && opts.JetStream && !ns.JetStreamEnabled() {
		err = errors.New("JetStream did not start")
	}
	if err != nil {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, err
	}
	return ns, nil
}

// natsLog routes nats-server's log through slog. Its notices (the start banner,
// every connection) go to debug: the embedding service logs what an operator needs on its own.
// Fatalf records the message for StartServer instead of exiting the process.
type natsLog struct {
	log *slog.Logger

	mu    sync.Mutex
	fatal string
}

func (l *natsLog) emit(level slog.Level, format string, v []any) {
	if l.log.Enabled(context.Background(), level) {
		l.log.Log(context.Background(), level, fmt.Sprintf(format, v...), "component", "nats-server")
	}
}

func (l *natsLog) Noticef(format string, v ...any) { l.emit(slog.LevelDebug, format, v) }
func (l *natsLog) Warnf(format string, v ...any)   { l.emit(slog.LevelWarn, format, v) }
func (l *natsLog) Errorf(format string, v ...any)  { l.emit(slog.LevelError, format, v) }
func (l *natsLog) Debugf(format string, v ...any)  { l.emit(slog.LevelDebug, format, v) }
func (l *natsLog) Tracef(format string, v ...any)  { l.emit(slog.LevelDebug, format, v) }

func (l *natsLog) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.mu.Lock()
	if l.fatal == "" {
		l.fatal = msg
	}
	l.mu.Unlock()
	l.log.Error(msg, "component", "nats-server")
}

// fatalErr is the first fatal message, as an error, or nil.
func (l *natsLog) fatalErr() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fatal == "" {
		return nil
	}
	return errors.New(l.fatal)
}
