package greengrass

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"strings"

	"github.com/fleetlab/fleetlab/sim/agent"
	ggwire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/greengrass"
)

// MaxResourceBytes bounds the unpacked size of the S3 resources of one deployment.
const MaxResourceBytes = 256 << 20

// downloadingState reports the step, then stages the group version: its resources downloaded and unpacked,
// its functions' scripts and its configuration. With refuse set, the document could not be read: the state
// rejects the execution.
type downloadingState struct {
	j      *job
	refuse error
}

func (downloadingState) Name() string { return StepDownloading }

func (s downloadingState) Handle(x *agent.Execution) (agent.State, error) {
	if err := x.Step(StepDownloading, nil); err != nil {
		return nil, err
	}
	if s.refuse != nil {
		return nil, agent.Reject(s.refuse)
	}
	if err := agent.CheckJobID(x.JobID()); err != nil {
		return nil, agent.Reject(err)
	}
	if err := s.j.pick(x); err != nil {
		return nil, err
	}
	if x.InSync() {
		return agent.Finished(StepFinished), nil
	}
	doc := s.j.doc
	if core := ggwire.ThingName(doc.Core.ThingArn); core != x.Device().Thing {
		return nil, agent.Failf(ggwire.CodeCoreMismatch, "the group's core is thing %s, this core is %s", core,
			x.Device().Thing)
	}
	ex := x.Executors()
	if _, err := ex.Versions.Open(x.VersionID()); err == nil {
		return startingState{s.j}, nil // staged before a restart
	}
	var b agent.Bundle
	b.File(groupFile, mustJSON(doc), 0o644)
	subs := doc.Subscriptions
	if doc.DeploymentType == ggwire.TypeReset {
		subs = nil
	}
	b.File(subscriptionsFile, mustJSON(struct {
		Subscriptions []ggwire.Subscription `json:"subscriptions"`
	}{subs}), 0o644)
	var pinned []string
	for _, f := range s.j.functions() {
		b.File(functionScript(f.ID), []byte(functionText(f)), 0o755)
		if f.Pinned {
			pinned = append(pinned, f.ID)
		}
	}
	if len(pinned) > 0 {
		b.File(superviseFile, supervisor(pinned), 0o755)
	}
	var total int64
	for _, r := range s.j.resources() {
		dir, _ := ggwire.ResourceDir(r.S3.DestinationPath)
		name := x.Staged("resource." + r.ID)
		blob, err := ex.Downloader.Download(x.Context(), ex.Transport,
			agent.Request{Bucket: r.S3.Bucket, Key: r.S3.Key, ETag: r.S3.ETag, Name: name}, x.Progress(StepDownloading))
		if err != nil {
			return nil, resourceErr(x, r, err)
		}
		n, err := b.Unpack(dir, blob, MaxResourceBytes-total)
		if err != nil {
			return nil, agent.Fail(ggwire.CodeResourceArchive, fmt.Errorf("resource %s (s3://%s/%s): %w", r.Name,
				r.S3.Bucket, r.S3.Key, err))
		}
		total += n
	}
	blob, err := b.Blob()
	if err != nil {
		return nil, err
	}
	if _, err := ex.Versions.Extract(x.Context(), x.VersionID(), blob); err != nil {
		return nil, err
	}
	return startingState{s.j}, nil
}

// resourceErr classifies a resource download's error: a refused ETag is CodeResourceChecksum, a final answer
// of the artifact store CodeResourceDownload; link errors and aborts pass through to the loop.
func resourceErr(x *agent.Execution, r ggwire.Resource, err error) error {
	var ee *agent.ETagError
	var ae *agent.APIError
	obj := fmt.Sprintf("resource %s (s3://%s/%s)", r.Name, r.S3.Bucket, r.S3.Key)
	switch {
	case x.Decides(err):
		return err
	case errors.As(err, &ee):
		return agent.Fail(ggwire.CodeResourceChecksum, fmt.Errorf("%s: %w", obj, err))
	case errors.As(err, &ae):
		return agent.Fail(ggwire.CodeResourceDownload, fmt.Errorf("%s: %w", obj, err))
	}
	return fmt.Errorf("%s: %w", obj, err)
}

// startingState invokes the on-demand functions from the staged version, then switches to it and starts its
// pinned functions.
type startingState struct{ j *job }

func (startingState) Name() string { return StepStarting }

func (s startingState) Handle(x *agent.Execution) (agent.State, error) {
	if err := x.Step(StepStarting, nil); err != nil {
		return nil, err
	}
	if err := s.j.pick(x); err != nil {
		return nil, err
	}
	v, err := x.Executors().Versions.Open(x.VersionID())
	if err != nil {
		return nil, err
	}
	for _, f := range s.j.functions() {
		if file, ok := executableFile(f); ok {
			if _, err := v.Files.Stat(file); err != nil {
				return nil, agent.Failf(ggwire.CodeFunctionFailed, "function %s (%s): its executable %s is not in the group version",
					f.ID, f.FunctionArn, file)
			}
		}
	}
	for _, f := range s.j.functions() {
		if f.Pinned {
			continue
		}
		if err := invoke(x, v, s.j.doc, f); err != nil {
			return nil, err
		}
	}
	if err := x.Launch(); err != nil {
		return nil, err
	}
	return agent.Finished(StepFinished), nil
}

// invoke runs function f of group version v once.
func invoke(x *agent.Execution, v agent.Version, doc ggwire.Document, f ggwire.Function) error {
	file, ok := executableFile(f)
	if !ok {
		file = functionScript(f.ID)
	}
	sc := agent.VersionScript(v, file, agent.Environ(f.Environment, FunctionEnv(x.Device(), v, doc, f)))
	sc.Name = "function " + f.ID
	if f.Timeout > 0 {
		sc.Timeout = secs(f.Timeout)
	}
	err := x.Executors().Scripts.Run(x.Context(), sc)
	var ee *agent.ExitError
	switch {
	case err == nil:
		return nil
	case x.Decides(err):
		return err
	case errors.Is(err, agent.ErrNotSimulable):
		return agent.Fail(ggwire.CodeDeviceError, fmt.Errorf("function %s: %w", f.ID, err))
	case errors.As(err, &ee):
		return agent.Fail(ggwire.CodeFunctionFailed, fmt.Errorf("function %s (%s) exited with status %d", f.ID,
			f.FunctionArn, ee.Code))
	case errors.Is(err, agent.ErrScriptTimeout):
		return agent.Fail(ggwire.CodeFunctionFailed, fmt.Errorf("function %s (%s): %w", f.ID, f.FunctionArn, err))
	}
	return err
}

// FunctionEnv is the core's own environment of a function.
func FunctionEnv(d agent.Device, v agent.Version, doc ggwire.Document, f ggwire.Function) map[string]string {
	own := map[string]string{"AWS_IOT_THING_NAME": d.Thing, "AWS_GREENGRASS_GROUP_ID": doc.GroupID,
		"GG_FUNCTION_ID": f.ID, "GG_FUNCTION_ARN": f.FunctionArn}
	if v.Dir != "" {
		own["GG_SUBSCRIPTIONS"] = filepath.Join(v.Dir, subscriptionsFile)
	}
	return own
}

// executableFile returns the file of the group version a function's Executable names, when it is one path
// relative to the version (a resource's file: "resources/app/run.sh") and the function has no ExecArgs: the
// core runs that file itself. Any other Executable is a shell command line.
func executableFile(f ggwire.Function) (string, bool) {
	e := strings.TrimSpace(f.Executable)
	if strings.TrimSpace(f.ExecArgs) != "" || strings.ContainsAny(e, " \t;&|<>$`'\"()*?") ||
		!strings.HasPrefix(e, "resources/") {
		return "", false
	}
	clean := path.Clean(e)
	if clean != e || strings.HasPrefix(clean, "../") {
		return "", false
	}
	return clean, true
}

// functionScript is the file of function id in a group version.
func functionScript(id string) string { return "functions/" + safeName(id) + ".sh" }

// functionText is the script of a function: its Executable and ExecArgs.
func functionText(f ggwire.Function) string {
	line := strings.TrimSpace(f.Executable)
	if a := strings.TrimSpace(f.ExecArgs); a != "" {
		line += " " + a
	}
	return "#!/bin/sh\n" + line + "\n"
}

// supervisor returns the script that keeps each pinned function of ids running: one that exits is started
// again after a second. It never exits itself.
func supervisor(ids []string) []byte {
	var b strings.Builder
	b.WriteString("#!/bin/sh\ncd \"$(dirname \"$0\")/..\" || exit 1\nkeep() {\n\twhile :; do\n\t\tGG_FUNCTION_ID=\"$1\" \"functions/$1.sh\"\n\t\tsleep 1\n\tdone\n}\n")
	for _, id := range ids {
		fmt.Fprintf(&b, "keep %s &\n", shellQuote(safeName(id)))
	}
	b.WriteString("wait\n")
	return []byte(b.String())
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// safeName makes an id usable as a file name (letters, digits, '-', '_', '.').
func safeName(id string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '_'
	}, id)
}

func mustJSON(v any) []byte {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		panic(fmt.Sprintf("encode %T: %v", v, err)) // only values of this package's making
	}
	return b
}
