// Package sim_test holds the layering rule of "one core, many dialects": no package but a dialect's own (its
// import path has an element that names the dialect) and the few lists of dialects imports a dialect's
// packages, so that a new dialect is its packages plus one line in each list.
package sim_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"go/parser"
	"go/token"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/fleetlab/fleetlab"

// dialects are the dialects' names. A dialect's packages are the AWS SDK's client of that name (and its
// types) and every package of the module with an element of that name in its path: its service
// (sim/awsapi/<d>), its job document (sim/deviceapi/wire/<d>), the agent's job kind (sim/agent/<d>) and the
// harness's driver (harness/<d>). The rest of the module must not import them.
var dialects = []string{"iot", "robomaker", "greengrassv2", "appconfig", "greengrass", "opsworks"}

// lists are the places allowed to import a dialect's packages: the lists of dialects. A package maps to the files of
// it that may (none listed: any file of the package). Test files are never checked.
var lists = map[string][]string{
	module + "/sim/service":     {"dialects.go"}, // the service's dialects
	module + "/sim/agent/kinds": nil,             // the agent's job kinds
	module + "/cmd/fleetlab":    nil,             // the CLI, which names the dialects it drives
	module + "/harness":         {"drivers.go"},  // the harness's dialect drivers

	module + "/cmd/fleetlab-agent": {"appconfig.go"}, // the agent binary's AppConfig device (AppConfig has no job kind)
	module + "/harness/replay":     {"appconfig.go"}, // the replay's AppConfig records, run in the AppConfig lab (no driver)
}

type listed struct {
	ImportPath string
	Dir        string
	GoFiles    []string
	Imports    []string
	Module     *struct{ Path string }
}

// TestDialectsStayInTheirPackages fails for every package of the module, outside the lists and the dialects'
// own packages, that imports a package of a dialect, directly or through others, and prints the chain of
// imports that reaches it.
func TestDialectsStayInTheirPackages(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("the go command is not on PATH")
	}
	cmd := exec.Command("go", "list", "-deps", "-json=ImportPath,Dir,GoFiles,Imports,Module", module+"/...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	pkgs := map[string]*listed{}
	var roots []string
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listed
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkgs[p.ImportPath] = &p
		if p.Module != nil && p.Module.Path == module {
			roots = append(roots, p.ImportPath)
		}
	}
	slices.Sort(roots)

	// Inside a list package, only its listed files may import a dialect.
	for pkg, files := range lists {
		p := pkgs[pkg]
		if p == nil || files == nil {
			continue
		}
		for _, f := range p.GoFiles {
			if slices.Contains(files, f) {
				continue
			}
			for _, imp := range fileImports(t, filepath.Join(p.Dir, f)) {
				if isDialect(imp) {
					t.Errorf("%s/%s imports %s: only %s of %s may", pkg, f, imp, strings.Join(files, ", "), pkg)
				}
			}
		}
	}

	var offenders []string
	for _, root := range roots {
		if exempt(root) {
			continue
		}
		if chain := dialectChain(pkgs, root); chain != nil {
			offenders = append(offenders, root)
			t.Errorf("%s imports a dialect: %s", root, strings.Join(chain, " → "))
		}
	}
	if len(offenders) > 0 {
		t.Logf("%d packages import a dialect outside the lists (%s); move what they need of it behind the "+
			"dialect-neutral packages or into a list", len(offenders), strings.Join(offenders, ", "))
	}
}

// dialectChain returns the shortest chain of imports from root to a dialect package, not passing through a
// list or a dialect's own package (they may import dialects), or nil when there is none.
func dialectChain(pkgs map[string]*listed, root string) []string {
	prev := map[string]string{root: ""}
	queue := []string{root}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		p := pkgs[cur]
		if p == nil {
			continue
		}
		for _, imp := range p.Imports {
			if _, seen := prev[imp]; seen {
				continue
			}
			prev[imp] = cur
			if isDialect(imp) {
				var chain []string
				for at := imp; at != ""; at = prev[at] {
					chain = append(chain, at)
				}
				slices.Reverse(chain)
				return chain
			}
			if !exempt(imp) {
				queue = append(queue, imp)
			}
		}
	}
	return nil
}

// isDialect reports whether path is a package of a dialect.
func isDialect(path string) bool {
	for _, d := range dialects {
		sdk := "github.com/aws/aws-sdk-go-v2/service/" + d
		if path == sdk || strings.HasPrefix(path, sdk+"/") {
			return true
		}
	}
	return ownPackage(path)
}

// ownPackage reports whether path is a package of the module with a dialect's name in its path.
func ownPackage(path string) bool {
	if !strings.HasPrefix(path, module+"/") {
		return false
	}
	elems := strings.Split(path, "/")
	for _, d := range dialects {
		if slices.Contains(elems, d) {
			return true
		}
	}
	return false
}

// exempt reports whether pkg may import dialects: a list, or a dialect's own package.
func exempt(pkg string) bool {
	if _, ok := lists[pkg]; ok {
		return true
	}
	return ownPackage(pkg)
}

// fileImports returns the import paths of one Go file.
func fileImports(t *testing.T, path string) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	var out []string
	for _, imp := range f.Imports {
		p, err := strconv.Unquote(imp.Path.Value)
		if err != nil {
			t.Fatalf("%s: import %s: %v", path, imp.Path.Value, err)
		}
		out = append(out, p)
	}
	return out
}
