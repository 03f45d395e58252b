package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fleetlab/fleetlab/harness"
	"github.com/fleetlab/fleetlab/rigs"
	"github.com/fleetlab/fleetlab/sim/service"
)

func rigCommand() *command {
	c := &command{name: "rig", summary: "check a lab rig: power each board, wait for its boot prompt, check its agent answers over serial",
		usage: "check [--agent PATH] [--timeout D] RIG.yaml"}
	c.run = func(args []string, stdout, stderr io.Writer) error {
		if len(args) == 0 || args[0] != "check" {
			if len(args) > 0 && (args[0] == "--help" || args[0] == "-h") {
				newFlags(c, stderr).Usage()
				return nil
			}
			return &usageError{msg: "want a subcommand: fleetlab rig check RIG.yaml",
				hint: "fleetlab rig check fixtures/rigs/emulated-4.yaml"}
		}
		fs := newFlags(c, stderr)
		agentPath := fs.String("agent", "", "the fleetlab-agent program emulated boards run (default: beside fleetlab, on PATH, or built from this module)")
		timeout := fs.Duration("timeout", 2*time.Minute, "bound of the whole check")
		files, err := parseInterleaved(c, fs, args[1:])
		if err != nil {
			return err
		}
		if len(files) != 1 {
			return &usageError{msg: "give one rig file", hint: "fleetlab rig check fixtures/rigs/emulated-4.yaml"}
		}
		f, err := rigs.Load(files[0])
		if err != nil {
			return &usageError{msg: err.Error(), hint: "see fixtures/rigs for examples and the rigs package documentation for every field"}
		}
		dir, err := os.MkdirTemp("", "fleetlab-rig-check-")
		if err != nil {
			return &envError{err}
		}
		defer os.RemoveAll(dir)
		agent, done, err := rigAgent(f, *agentPath)
		if err != nil {
			return err
		}
		defer done()
		svc, err := service.New(service.Options{Dir: filepath.Join(dir, "service"), InMemoryStore: true})
		if err != nil {
			return &envError{err}
		}
		defer svc.Close()
		if err := svc.Start("127.0.0.1:0", "127.0.0.1:0"); err != nil {
			return &envError{err}
		}
		r, err := rigs.Open(f, rigs.Options{Endpoint: svc.Endpoint(), Dir: filepath.Join(dir, "boards"), Agent: agent})
		if err != nil {
			return &envError{fmt.Errorf("open rig %s: %w", f.Rig, err)}
		}
		defer r.Close()
		ctx, cancel := context.WithTimeout(context.Background(), *timeout)
		defer cancel()
		fmt.Fprintf(stdout, "rig %s: checking %d boards\n\n", f.Rig, len(r.Boards()))
		hs := r.Check(ctx)
		tw := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "BOARD\tTHING\tBOOT\tAGENT\tSTATUS\tFRAMES IN\tRESENT\tDAMAGED\tRESULT")
		var bad []string
		for i, h := range hs {
			st := "-"
			if h.Status != nil {
				st = map[bool]string{true: "active", false: "inactive"}[*h.Status]
			}
			boot := "no prompt"
			if h.Booted {
				boot = fmt.Sprintf("%.1fs", h.BootTime.Seconds())
			}
			res := "healthy"
			if !h.Healthy() {
				res = "FAILED"
				bad = append(bad, h.Board)
			}
			fs := r.Boards()[i].Stats()
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n", h.Board, h.Thing, boot, map[bool]string{true: "answers", false: "-"}[h.Agent],
				st, fs.FramesReceived, fs.FramesResent, fs.FramesCorrupt, res)
		}
		tw.Flush()
		for _, h := range hs {
			if !h.Healthy() {
				fmt.Fprintf(stdout, "\n%s: %v\n", h.Board, h.Err)
			}
		}
		if len(bad) > 0 {
			return &envError{fmt.Errorf("rig failure: %s unhealthy; the rig is not fit to run scenarios (this is not a deployment failure)",
				strings.Join(bad, ", "))}
		}
		fmt.Fprintf(stdout, "\nrig %s: every board healthy\n", f.Rig)
		return nil
	}
	return c
}

// rigAgent returns the fleetlab-agent program for the rig's emulated boards (see agentProgram) and what to call
// when the run is over; a rig of real boards runs none.
func rigAgent(f *rigs.File, flagPath string) (string, func(), error) {
	for _, b := range f.Boards {
		if b.Emulate != nil {
			return agentProgram(flagPath)
		}
	}
	return "", func() {}, nil
}

// rigBackend is the backend of `fleetlab run --rig`: the rig file's boards as the fleet host, and what to call
// when the run is over.
func rigBackend(path, agentPath string) (harness.Backend, func(), error) {
	nothing := func() {}
	f, err := rigs.Load(path)
	if err != nil {
		return nil, nothing, &usageError{msg: err.Error(), hint: "see fixtures/rigs for examples"}
	}
	agent, done, err := rigAgent(f, agentPath)
	if err != nil {
		return nil, nothing, err
	}
	return harness.Rig{File: f, Agent: agent}, done, nil
}
