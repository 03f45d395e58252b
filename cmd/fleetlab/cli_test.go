package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/fleetlab/fleetlab/fixtures/bundles"
)

// cli runs the built fleetlab with args and returns its stdout, stderr and exit code.
func cli(t *testing.T, bin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("fleetlab %v: %v", args, err)
	}
	return out.String(), errOut.String(), code
}

// TestCLI runs the real command as a newcomer would: help on stdout, usage errors once on stderr with exit 2, the
// version, the bundles, and scenario files whose mistakes are placed and are usage errors.
func TestCLI(t *testing.T) {
	bin := buildFleetlab(t)

	t.Run("help goes to stdout", func(t *testing.T) {
		for _, args := range [][]string{{"help"}, {}, {"--help"}, {"help", "serve"}, {"serve", "--help"},
			{"help", "model"}, {"model", "-h"}, {"help", "run"}, {"run", "--help"}, {"help", "bundle"}, {"help", "version"},
			{"help", "demo"}} {
			out, errOut, code := cli(t, bin, args...)
			if code != exitOK || errOut != "" || !strings.Contains(out, "Usage: fleetlab") {
				t.Errorf("fleetlab %v: exit %d, stdout %q, stderr %q; want the help on stdout, exit 0", args, code, out, errOut)
			}
			if len(args) == 2 && strings.Count(out, "Usage: fleetlab") != 1 {
				t.Errorf("fleetlab %v prints its usage %d times:\n%s", args, strings.Count(out, "Usage:"), out)
			}
		}
	})

	t.Run("usage errors go to stderr once", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"nope"}, `unknown command "nope"`},
			{[]string{"help", "nope"}, `unknown command "nope"`},
			{[]string{"serve", "--bogus"}, "flag provided but not defined: -bogus"},
			{[]string{"model"}, "name one service"},
			{[]string{"model", "--bogus"}, "flag provided but not defined: -bogus"},
			{[]string{"bundle", "nope"}, `no bundle or script "nope"`},
			{[]string{"version", "extra"}, "unexpected arguments"},
		} {
			out, errOut, code := cli(t, bin, tc.args...)
			if code != exitUsage || out != "" || strings.Count(errOut, tc.want) != 1 || !strings.Contains(errOut, "hint:") ||
				strings.Contains(errOut, "Flags:") {
				t.Errorf("fleetlab %v: exit %d, stdout %q, stderr %q; want %q once on stderr with a hint, exit 2",
					tc.args, code, out, errOut, tc.want)
			}
		}
	})

	t.Run("version", func(t *testing.T) {
		for _, args := range [][]string{{"version"}, {"--version"}} {
			out, errOut, code := cli(t, bin, args...)
			if code != exitOK || errOut != "" {
				t.Fatalf("fleetlab %v: exit %d, stderr %q", args, code, errOut)
			}
			for _, want := range []string{"fleetlab ", "(module github.com/fleetlab/fleetlab)", "commit ",
				"built with " + runtime.Version() + " for " + runtime.GOOS + "/" + runtime.GOARCH} {
				if !strings.Contains(out, want) {
					t.Errorf("fleetlab %v lacks %q:\n%s", args, want, out)
				}
			}
		}
	})

	t.Run("bundle", func(t *testing.T) {
		dir := t.TempDir()
		file := filepath.Join(dir, "hello.tar.gz")
		_, errOut, code := cli(t, bin, "bundle", "-o", file)
		got, err := os.ReadFile(file)
		if code != exitOK || err != nil || !bytes.Equal(got, bundles.MustBuild(bundles.Hello)) {
			t.Fatalf("bundle -o: exit %d (%v), %d bytes; want the hello bundle", code, err, len(got))
		}
		for _, want := range []string{"hello_robot/launch.sh", "pre_launch.sh", "packageName=hello_robot", "launchFile=launch.sh"} {
			if !strings.Contains(errOut, want) {
				t.Errorf("bundle -o says %q; want the layout (%s)", errOut, want)
			}
		}
		out, _, code := cli(t, bin, "bundle", bundles.PreLaunchExit3)
		if code != exitOK || out != string(bundles.MustBuild(bundles.PreLaunchExit3)) {
			t.Errorf("bundle %s to stdout: exit %d, %d bytes", bundles.PreLaunchExit3, code, len(out))
		}
		script, _ := bundles.Script(bundles.ConditionOK)
		if out, _, code := cli(t, bin, "bundle", bundles.ConditionOK); code != exitOK || out != string(script) {
			t.Errorf("bundle %s: exit %d, %q", bundles.ConditionOK, code, out)
		}
		out, _, code = cli(t, bin, "bundle", "--list")
		for _, n := range append(bundles.Names(), bundles.Scripts()...) {
			if code != exitOK || !strings.Contains(out, "  "+n+" ") || !strings.Contains(out, bundles.Description(n)) {
				t.Errorf("bundle --list (exit %d) lacks %s and what it is for:\n%s", code, n, out)
			}
		}
	})

	t.Run("scenario file errors", func(t *testing.T) {
		dir := t.TempDir()
		const tail = `, "expect": {"status": "Failed", "others": {"status": "InSync"}}}`
		for _, tc := range []struct{ name, body, want string }{
			{"syntax", "{\"name\": \"x\",\n  \"fleet\": {\"robots\": 2,}" + tail, "line 2, column 26: JSON syntax"},
			{"unknown", "{\"name\": \"x\",\n  \"jobb\": {}" + tail, `line 2, column 3: unknown field "jobb" in the scenario (fields: `},
			{"param", "{\"name\": \"x\", \"faults\": [\n {\"fault\": \"crash\", \"params\": {\"dwon\": \"30s\"}}]" + tail,
				`line 2, column 32: unknown field "dwon" in faults[0].params (fields: down, stay)`},
			{"outside", "{\"name\": \"x\", \"fleet\": {\"robots\": 2}, \"faults\": [\n {\"fault\": \"no-response\", \"target\": {\"devices\": [\"robot-0003\"]}}]" + tail,
				"robot-0003 is not a robot of the fleet (robot-0001, robot-0002)"},
		} {
			p := filepath.Join(dir, tc.name+".json")
			if err := os.WriteFile(p, []byte(tc.body), 0o644); err != nil {
				t.Fatal(err)
			}
			_, errOut, code := cli(t, bin, "run", p)
			if code != exitUsage || !strings.Contains(errOut, tc.want) || !strings.Contains(errOut, "hint:") {
				t.Errorf("run %s: exit %d, stderr %q; want exit 2 and %q", tc.name, code, errOut, tc.want)
			}
		}
	})
}

// TestVersionText: the version names the module version, the commit with its time and whether the tree had
// local changes, and the toolchain and platform of the build.
func TestVersionText(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26.1", Main: debug.Module{Path: "github.com/fleetlab/fleetlab",
		Version: "v0.3.0"}, Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123abc"},
		{Key: "vcs.time", Value: "2026-01-02T03:04:05Z"}, {Key: "vcs.modified", Value: "true"},
		{Key: "GOOS", Value: "linux"}, {Key: "GOARCH", Value: "arm64"}}}
	want := "fleetlab v0.3.0 (module github.com/fleetlab/fleetlab)\ncommit 0123abc of 2026-01-02T03:04:05Z, with local changes\n" +
		"built with go1.26.1 for linux/arm64\n"
	if got := versionText(bi); got != want {
		t.Errorf("versionText:\n%s\nwant\n%s", got, want)
	}
}
