// Command voltage-cloud runs the cloud hub: the NATS server every edge site joins
// as a leaf node, with JetStream, and the hub's HTTP endpoints. It reads
// {--config}/cloud.yaml (all defaults when the file is missing).
package main

import (
	"bufio"
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"github.com/voltageems/voltage/cloud/hub"
	"github.com/voltageems/voltage/shared/obs"
	"github.com/voltageems/voltage/shared/service"
)

const name = "voltage-cloud"

func main() {
	if len(os.Args) > 1 && os.Args[1] == "hash-password" {
		os.Exit(hashPassword(os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(run(os.Args[1:], os.Stderr))
}

// hashPassword is `voltage-cloud hash-password`: it reads a site's leaf-node
// password from the first line of stdin, or generates one when stdin is empty,
// and prints the leaf_password line for cloud.yaml (a bcrypt hash).
func hashPassword(stdin io.Reader, stdout, stderr io.Writer) int {
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		fmt.Fprintf(stderr, "%s hash-password: read stdin: %v\n", name, err)
		return 1
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		pw = rand.Text()
		fmt.Fprintf(stdout, "# generated password: give it to the site (nats.leaf_remote user info)\npassword: %s\n", pw)
	} else if len(pw) < 12 {
		fmt.Fprintf(stderr, "%s hash-password: the password is shorter than 12 characters\n", name)
		return 1
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), 11)
	if err != nil {
		fmt.Fprintf(stderr, "%s hash-password: %v\n", name, err)
		return 1
	}
	fmt.Fprintf(stdout, "leaf_password: %q\n", h)
	return 0
}

// run is main without the exit, returning the exit code the way service.Main does.
func run(args []string, stderr io.Writer) int {
	flags, err := service.ParseFlags(name, args, stderr, nil)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return service.ExitConfig
	}
	cfg, err := hub.Load(flags.ConfigDir)
	if err != nil {
		fmt.Fprintf(stderr, "%s: invalid configuration in %s:\n%v\n", name, flags.ConfigDir, err)
		return service.ExitConfig
	}
	hub.ApplyEnv(&cfg)
	log, err := obs.NewLogger(stderr, cmp.Or(flags.LogLevel, cfg.Logging.Level), cmp.Or(flags.LogFormat, cfg.Logging.Format))
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return service.ExitConfig
	}
	cfg.Log = log.With("service", name)

	ctx, stop, reload := service.Signals(context.Background())
	defer stop()
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-reload:
				cfg.Log.Info("SIGHUP ignored: cloud.yaml is read at start; restart the hub to apply changes")
			}
		}
	}()

	cfg.Log.Info("starting", "version", service.Version, "config", flags.ConfigDir)
	if err := hub.Run(ctx, cfg); err != nil && !errors.Is(err, context.Canceled) {
		cfg.Log.Error("stopped with error", "err", err)
		var ce *service.ConfigError
		if errors.As(err, &ce) {
			return service.ExitConfig
		}
		return 1
	}
	cfg.Log.Info("stopped")
	return 0
}
