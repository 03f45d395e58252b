package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/fleetlab/fleetlab/reports"
)

// DefaultReportAddr is where fleetlab report serve listens unless told otherwise.
const DefaultReportAddr = "127.0.0.1:4712"

func reportCommand() *command {
	c := &command{name: "report", summary: "serve a run's events.jsonl in the live report view (a finished run, or one still being written)",
		usage: "serve [--addr HOST:PORT] [--token T] [events.jsonl]"}
	c.run = func(args []string, stdout, stderr io.Writer) error {
		if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
			newFlags(c, stderr).Usage()
			if len(args) == 0 {
				return &usageError{msg: "no subcommand", hint: "fleetlab report serve events.jsonl"}
			}
			return flag.ErrHelp
		}
		if args[0] != "serve" {
			return &usageError{msg: fmt.Sprintf("unknown subcommand %q", args[0]), hint: "fleetlab report serve events.jsonl"}
		}
		fs := newFlags(c, stderr)
		addr := fs.String("addr", DefaultReportAddr, "address of the report view; on anything but loopback it requires a token")
		token := fs.String("token", "", "token the view requires (default: none on loopback, a random one elsewhere)")
		files, err := parseInterleaved(c, fs, args[1:])
		if err != nil {
			return err
		}
		path := "events.jsonl"
		switch len(files) {
		case 0:
		case 1:
			path = files[0]
		default:
			return &usageError{msg: "more than one events file", hint: "serve one run's events.jsonl at a time"}
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return serveReport(ctx, path, *addr, *token, stdout, nil)
	}
	return c
}

// serveReport serves the events file at path in the live view until ctx ends, following what is appended to it
// until its run ends. ready, when set, is given the server once it listens.
func serveReport(ctx context.Context, path, addr, token string, out io.Writer, ready func(*reports.Server)) error {
	if _, err := os.Stat(path); err != nil {
		hint := "give the events.jsonl that 'fleetlab run --report DIR' or 'go test ./scenarios -fleetlab.report DIR' wrote"
		if errors.Is(err, fs.ErrNotExist) {
			return &usageError{msg: fmt.Sprintf("no events file %s", path), hint: hint}
		}
		return &usageError{msg: err.Error(), hint: hint}
	}
	if err := checkAddr(addr); err != nil {
		return err
	}
	hub := reports.NewHub(reports.HubOptions{})
	srv, err := reports.Serve(addr, hub, token)
	if err != nil {
		return &envError{err}
	}
	defer srv.Close()
	fmt.Fprintf(out, "report view  %s\n  serving    %s\n", srv.URL(), path)
	if ready != nil {
		ready(srv)
	}
	followed := make(chan error, 1)
	go func() {
		followed <- reports.Follow(ctx, path, 0, func(r reports.Record) { hub.Add([]reports.Record{r}) })
	}()
	select {
	case err := <-followed:
		if err != nil && ctx.Err() == nil {
			return &failedError{msg: fmt.Sprintf("%v (the records before it are served; fix or truncate the file)", err)}
		}
		hub.End()
		fmt.Fprintf(out, "  the run is over: %d records. Ctrl-C stops the view.\n", hub.Len())
	case <-ctx.Done():
	}
	<-ctx.Done()
	return nil
}

// checkAddr checks a host:port flag, as a usage error with a hint.
func checkAddr(addr string) error {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return &usageError{msg: fmt.Sprintf("address %q: want host:port", addr),
			hint: "such as 127.0.0.1:4712, or 127.0.0.1:0 for any free port"}
	}
	return nil
}

// reportFlags are the flags of the commands whose runs are reported: the files of --report and the live view.
type reportFlags struct {
	dir, addr, token string
	noLive           bool
}

// register adds the flags to fs.
func (f *reportFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.dir, "report", "", "write junit.xml, events.jsonl and report.html of the run into this directory")
	fs.StringVar(&f.addr, "live-addr", "127.0.0.1:0", "address of the live report view (port 0: any free port)")
	fs.StringVar(&f.token, "live-token", "", "token the live view requires (default: none on loopback, a random one elsewhere)")
	fs.BoolVar(&f.noLive, "no-live", false, "do not start the live report view")
}

// Report file names in a --report directory.
const (
	fileJUnit  = "junit.xml"
	fileEvents = "events.jsonl"
	fileHTML   = "report.html"
)

// runReport is a run's report as the commands start it: the live view and the files.
type runReport struct {
	run    *reports.Run
	hub    *reports.Hub // nil without the live view
	server *reports.Server
	dir    string
}

// startReport starts the reporting of a run named name: the live view unless --no-live, and the files of
// --report. Bad flags are usage errors; a directory that cannot be written or a port in use, environment ones.
func startReport(name string, f reportFlags) (*runReport, error) {
	if !f.noLive {
		if err := checkAddr(f.addr); err != nil {
			return nil, err
		}
	}
	r := &runReport{dir: f.dir}
	var sinks []reports.Sink
	if !f.noLive {
		r.hub = reports.NewHub(reports.HubOptions{})
		sinks = append(sinks, r.hub)
	}
	if f.dir != "" {
		if err := os.MkdirAll(f.dir, 0o755); err != nil {
			return nil, &envError{fmt.Errorf("report directory: %w", err)}
		}
		events, err := reports.CreateJSONLines(filepath.Join(f.dir, fileEvents))
		if err != nil {
			return nil, &envError{err}
		}
		sinks = append(sinks, events, reports.CreateJUnit(filepath.Join(f.dir, fileJUnit)),
			reports.CreateHTML(filepath.Join(f.dir, fileHTML)))
	}
	run, err := reports.New(reports.Options{Name: name, Sinks: sinks})
	if err != nil {
		return nil, &envError{err}
	}
	r.run = run
	if r.hub != nil {
		if r.server, err = reports.Serve(f.addr, r.hub, f.token); err != nil {
			run.Close()
			return nil, &envError{err}
		}
	}
	return r, nil
}

// liveURL returns the live view's URL, "" without one.
func (r *runReport) liveURL() string {
	if r.server == nil {
		return ""
	}
	return r.server.URL()
}

// finish ends the run: the files are written and listed on out. The live view stays up until stop.
func (r *runReport) finish(out io.Writer) error {
	err := r.run.Close()
	if r.dir != "" && err == nil {
		fmt.Fprintf(out, "report: %s, %s, %s\n", filepath.Join(r.dir, fileHTML), filepath.Join(r.dir, fileJUnit),
			filepath.Join(r.dir, fileEvents))
	}
	if err != nil {
		return &envError{fmt.Errorf("write the report: %w", err)}
	}
	return nil
}

// stop ends the live view.
func (r *runReport) stop() {
	if r.server != nil {
		r.server.Close()
	}
}
