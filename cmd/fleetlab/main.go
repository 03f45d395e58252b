// Command fleetlab is the hardware-in-the-loop test harness and simulator for fleet deployment systems.
//
// Usage:
//
//	fleetlab demo     run the showcase: service, an in-process fleet, a clean rollout and a failing one
//	fleetlab serve    run the deployment service (AWS APIs, device API, artifact store)
//	fleetlab run      run scenario files (fixtures/scenarios/*.json) outside go test
//	fleetlab bench    measure rollout throughput over a sweep of fleet sizes, beside the machine's loopback limit
//	fleetlab replay   turn a field record into a scenario, run it, and compare it with the record
//	fleetlab bundle   write a fixture robot bundle (hello by default), or list them
//	fleetlab model    print a dialect's AWS service model, for aws configure add-model
//	fleetlab report   serve a run's events.jsonl in the live report view
//	fleetlab version  print the module version, commit and Go version
//	fleetlab help     show help for a command
//
// Help asked for (fleetlab help, fleetlab help CMD, -h, --help) goes to stdout and exits 0; a usage error goes
// to stderr, once, with a hint, and exits 2.
//
// Exit codes: 0 success; 1 the work ran and found a failure (a scenario or benchmark target not met);
// 2 bad usage (flags, arguments); 3 the environment failed (a port in use, a data directory locked, a rig down).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/fleetlab/fleetlab/harness"
)

// Exit codes scripts can rely on.
const (
	exitOK      = 0
	exitFailed  = 1
	exitUsage   = 2
	exitEnviron = 3
)

// command is one subcommand.
type command struct {
	name    string
	summary string
	usage   string // the argument synopsis after the name
	run     func(args []string, stdout, stderr io.Writer) error
	flags   *flag.FlagSet // set by newFlags, for the help
}

// usageError is a mistake in how the command was called; it carries a hint of what to do.
type usageError struct{ msg, hint string }

func (e *usageError) Error() string { return e.msg }

// envError is a failure of the environment (a port, a directory, a rig), not of what was tested.
type envError struct{ err error }

func (e *envError) Error() string { return e.err.Error() }
func (e *envError) Unwrap() error { return e.err }

// failedError means the run completed and what it checked did not hold.
type failedError struct{ msg string }

func (e *failedError) Error() string { return e.msg }

func commands() map[string]*command {
	cs := []*command{serveCommand(), modelCommand(), demoCommand(), runCommand(), benchCommand(), replayCommand(), reportCommand(), rigCommand(), bundleCommand(), versionCommand()}
	m := map[string]*command{}
	for _, c := range cs {
		m[c.name] = c
	}
	return m
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cmds := commands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" && len(args) == 1 {
		printUsage(stdout, cmds)
		return exitOK
	}
	if args[0] == "--version" {
		args = []string{"version"}
	}
	if args[0] == "help" {
		args = []string{args[1], "--help"}
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "fleetlab: unknown command %q\n", args[0])
		fmt.Fprintf(stderr, "hint: run 'fleetlab help' for the list of commands\n")
		return exitUsage
	}
	err := c.run(args[1:], stdout, stderr)
	var ue *usageError
	var ee *envError
	var fe *failedError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		printCommandUsage(stdout, c)
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "fleetlab %s: %s\n", c.name, ue.msg)
		if ue.hint != "" {
			fmt.Fprintf(stderr, "hint: %s\n", ue.hint)
		}
		return exitUsage
	case errors.As(err, &fe):
		fmt.Fprintf(stderr, "fleetlab %s: %s\n", c.name, fe.msg)
		return exitFailed
	case errors.As(err, &ee):
		fmt.Fprintf(stderr, "fleetlab %s: %v\n", c.name, ee.err)
		return exitEnviron
	default:
		fmt.Fprintf(stderr, "fleetlab %s: %v\n", c.name, err)
		return exitEnviron
	}
}

func printUsage(w io.Writer, cmds map[string]*command) {
	fmt.Fprintln(w, "fleetlab — test how fleet deployments behave when devices misbehave, before the field does.")
	fmt.Fprintln(w, "\nUsage: fleetlab <command> [flags]\n\nCommands:")
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintf(w, "  %-8s %s\n", "help", "show a command's flags: fleetlab help <command>")
	fmt.Fprintln(w, "\nRun 'fleetlab help <command>' for its flags. Start with 'fleetlab demo'.")
}

// newFlags returns the command's flag set. The flag set prints nothing itself: run prints a bad flag once, with
// a hint, on stderr, and the help asked for on stdout (printCommandUsage). The writer the commands pass is not
// used.
func newFlags(c *command, _ io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("fleetlab "+c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	c.flags = fs
	return fs
}

// printCommandUsage prints the command's synopsis, summary and flags.
func printCommandUsage(w io.Writer, c *command) {
	fmt.Fprintf(w, "Usage: %s\n\n%s\n", strings.TrimSpace("fleetlab "+c.name+" "+c.usage), c.summary)
	if c.flags == nil {
		return
	}
	n := 0
	c.flags.VisitAll(func(*flag.Flag) { n++ })
	if n == 0 {
		return
	}
	fmt.Fprintf(w, "\nFlags:\n")
	c.flags.SetOutput(w)
	c.flags.PrintDefaults()
	c.flags.SetOutput(io.Discard)
}

// checkTimeScale checks a --time-scale the same way for every command: harness.CheckTimeScale, with a hint
// of the range.
func checkTimeScale(scale float64) error {
	if err := harness.CheckTimeScale(scale); err != nil {
		return &usageError{msg: "--time-scale: " + err.Error(),
			hint: fmt.Sprintf("use 1 for real time, or a factor up to %d to compress policy time (at 600 a "+
				"10-minute bake takes 1 s)", harness.MaxTimeScale)}
	}
	return nil
}

// given reports whether the flag name was set on the command line.
func given(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// parse parses flags, turning a bad flag into a usageError with a hint.
func parse(c *command, fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &usageError{msg: err.Error(), hint: "run 'fleetlab help " + c.name + "' for the flags"}
	}
	if fs.NArg() > 0 {
		return &usageError{msg: "unexpected arguments: " + strings.Join(fs.Args(), " "),
			hint: "run 'fleetlab help " + c.name + "' for the flags"}
	}
	return nil
}
