// Command nsguard watches a company's critical domains: delegation, name
// servers, DNSSEC and registration, against an approved baseline, and runs
// failover playbooks by hand. This package holds the cobra commands only.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/nsguard/nsguard/config"
)

// Exit codes (the Nagios plugin convention for check; the rest follow it).
const (
	exitOK       = 0
	exitWarning  = 1
	exitCritical = 2
	exitUsage    = 3
)

// Set by -ldflags "-X main.version=... -X main.commit=...".
var (
	version = "dev"
	commit  = "none"
)

// exitError carries a specific exit code up to main; a nil err with a
// non-zero code means "already reported, just exit".
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}
func (e *exitError) Unwrap() error { return e.err }

func withCode(code int, err error) error { return &exitError{code: code, err: err} }

// globals are the flags and streams every command shares.
type globals struct {
	configPath string
	logLevel   string
	stdout     io.Writer
	stderr     io.Writer
	stdin      io.Reader
	// isTTY reports whether stdout is a terminal (progress bars, colour).
	isTTY bool
}

// commands is filled by each command file's init, so adding a command is
// adding a file.
var commands []func(*globals) *cobra.Command

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one nsguard command line and returns its exit code; tests
// call it in-process.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	g := &globals{stdout: stdout, stderr: stderr, stdin: stdin, isTTY: isTerminal(stdout)}
	root := &cobra.Command{
		Use:           "nsguard",
		Short:         "Keep critical domains safe: delegation, DNS, DNSSEC and registration monitoring with failover",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetIn(stdin)
	defConfig := os.Getenv("NSGUARD_CONFIG")
	if defConfig == "" {
		defConfig = "/etc/nsguard/nsguard.yaml"
	}
	root.PersistentFlags().StringVarP(&g.configPath, "config", "c", defConfig, "config file (env NSGUARD_CONFIG)")
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	for _, mk := range commands {
		root.AddCommand(mk(g))
	}
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintf(stderr, "nsguard: %v\n", ee.err)
		}
		return ee.code
	}
	fmt.Fprintf(stderr, "nsguard: %v\n", err)
	return exitUsage
}

// loadConfig loads the --config file; a bad config exits 3 with every
// problem listed, and nothing is started.
func (g *globals) loadConfig() (*config.Config, error) {
	cfg, err := config.Load(g.configPath)
	if err != nil {
		return nil, withCode(exitUsage, fmt.Errorf("invalid config:\n%w", err))
	}
	return cfg, nil
}

// logger returns a slog logger writing to stderr (text on a TTY, JSON otherwise).
func (g *globals) logger(json bool) *slog.Logger {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(g.logLevel)); err != nil {
		lvl = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lvl}
	if json {
		return slog.New(slog.NewJSONHandler(g.stderr, opts))
	}
	return slog.New(slog.NewTextHandler(g.stderr, opts))
}

// quietLogger is for the engines a command drives: what they log for the
// daemon's journal (an alert enqueued) is noise on a terminal, so only
// warnings show unless --log-level asks for more.
func (g *globals) quietLogger() *slog.Logger {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(g.logLevel)); err != nil || lvl >= slog.LevelInfo {
		lvl = slog.LevelWarn
	}
	return slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: lvl}))
}

// isTerminal reports whether w is a terminal: a file the terminal ioctl
// works on (terminal_*.go), not any character device — /dev/null is one,
// and `nsguard check -o json > /dev/null` would otherwise hold the whole
// report back for a progress bar no one sees.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	return fileIsTerminal(f)
}
