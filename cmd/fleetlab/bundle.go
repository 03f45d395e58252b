package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/fleetlab/fleetlab/fixtures/bundles"
)

func bundleCommand() *command {
	c := &command{name: "bundle", summary: "write a robot bundle of fixtures/bundles (hello by default), or list them",
		usage: "[NAME] [-o FILE] | --list"}
	c.run = func(args []string, stdout, stderr io.Writer) error {
		fs := newFlags(c, stderr)
		out := fs.String("o", "", "write to FILE instead of stdout")
		list := fs.Bool("list", false, "list the bundles and download condition scripts, and the layout they share")
		names, err := parseInterleaved(c, fs, args)
		if err != nil {
			return err
		}
		if *list {
			if len(names) > 0 || *out != "" {
				return &usageError{msg: "--list takes no name and no -o", hint: "fleetlab bundle --list"}
			}
			return listBundles(stdout)
		}
		name := bundles.Hello
		switch len(names) {
		case 0:
		case 1:
			name = names[0]
		default:
			return &usageError{msg: "give one bundle name", hint: "fleetlab bundle hello -o hello.tar.gz"}
		}
		var body []byte
		isScript := slices.Contains(bundles.Scripts(), name)
		switch {
		case isScript:
			body, err = bundles.Script(name)
		case slices.Contains(bundles.Names(), name):
			body, err = bundles.Build(name)
		default:
			return &usageError{msg: fmt.Sprintf("no bundle or script %q", name),
				hint: "fleetlab bundle --list shows them: " + strings.Join(append(bundles.Names(), bundles.Scripts()...), ", ")}
		}
		if err != nil {
			return err
		}
		if *out == "" && isTerminal(stdout) {
			return &usageError{msg: "will not write a bundle to a terminal",
				hint: fmt.Sprintf("redirect it or name a file: fleetlab bundle %s -o %s", name, fileName(name))}
		}
		dst := stdout
		if *out != "" {
			if err := os.WriteFile(*out, body, 0o644); err != nil {
				return &envError{fmt.Errorf("write bundle: %w", err)}
			}
			dst = nil
		}
		if dst != nil {
			if _, err := dst.Write(body); err != nil {
				return &envError{fmt.Errorf("write bundle: %w", err)}
			}
		}
		where := *out
		if where == "" {
			where = "stdout"
		}
		fmt.Fprintf(stderr, "fleetlab bundle: wrote %s (%d bytes) to %s\n", name, len(body), where)
		if !isScript {
			if files, err := members(body); err == nil {
				fmt.Fprintf(stderr, "  holds %s\n  %s\n", strings.Join(files, ", "), launchConfig)
			}
		}
		return nil
	}
	return c
}

// launchConfig is the launch config every fixture bundle is laid out for, as a deployment job gives it.
const launchConfig = "launch config: packageName=" + bundles.Package + " launchFile=" + bundles.LaunchFile +
	" preLaunchFile=" + bundles.PreLaunchFile + " postLaunchFile=" + bundles.PostLaunchFile

func fileName(name string) string {
	if strings.HasSuffix(name, ".sh") {
		return name
	}
	return name + ".tar.gz"
}

// listBundles prints every bundle and script with what it is for, and the layout of the hello bundle.
func listBundles(w io.Writer) error {
	fmt.Fprintln(w, "Bundles (fleetlab bundle NAME -o NAME.tar.gz):")
	for _, n := range bundles.Names() {
		fmt.Fprintf(w, "  %-20s %s\n", n, bundles.Description(n))
	}
	fmt.Fprintln(w, "\nDownload condition scripts, objects of their own (fleetlab bundle NAME -o NAME):")
	for _, n := range bundles.Scripts() {
		fmt.Fprintf(w, "  %-20s %s\n", n, bundles.Description(n))
	}
	files, err := members(bundles.MustBuild(bundles.Hello))
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\nA bundle is a tar.gz; hello holds\n  %s\nfor the %s.\n", strings.Join(files, "\n  "), launchConfig)
	return nil
}

// members lists the files of a tar.gz bundle.
func members(b []byte) ([]string, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(zr)
	var out []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if h.Typeflag == tar.TypeReg {
			out = append(out, h.Name)
		}
	}
}
