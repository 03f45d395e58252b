package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

func versionCommand() *command {
	c := &command{name: "version", summary: "print fleetlab's module version, the commit it was built from and the Go version",
		usage: ""}
	c.run = func(args []string, stdout, stderr io.Writer) error {
		fs := newFlags(c, stderr)
		if err := parse(c, fs, args); err != nil {
			return err
		}
		bi, _ := debug.ReadBuildInfo()
		_, err := io.WriteString(stdout, versionText(bi))
		return err
	}
	return c
}

// versionText describes the build: the main module's version ("(devel)" for a build of a checkout without
// version control information), the commit and its time with whether the tree had local changes, and the Go
// toolchain and platform.
func versionText(bi *debug.BuildInfo) string {
	if bi == nil {
		return fmt.Sprintf("fleetlab (no build information)\nbuilt with %s for %s/%s\n", runtime.Version(), runtime.GOOS,
			runtime.GOARCH)
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	out := fmt.Sprintf("fleetlab %s (module %s)\n", bi.Main.Version, bi.Main.Path)
	if rev := settings["vcs.revision"]; rev != "" {
		out += "commit " + rev
		if t := settings["vcs.time"]; t != "" {
			out += " of " + t
		}
		if settings["vcs.modified"] == "true" {
			out += ", with local changes"
		}
		out += "\n"
	} else {
		out += "commit unknown (built without version control information)\n"
	}
	goos, goarch := settings["GOOS"], settings["GOARCH"]
	if goos == "" {
		goos, goarch = runtime.GOOS, runtime.GOARCH
	}
	return out + fmt.Sprintf("built with %s for %s/%s\n", bi.GoVersion, goos, goarch)
}
