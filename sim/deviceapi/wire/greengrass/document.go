// Package greengrass holds the job document of a Greengrass V1 group deployment, as the service hands it to the
// group's core and the agent's Greengrass V1 kind carries it out: the group version the deployment names,
// resolved to what the core needs — its own core entry, the functions, the subscriptions and the resources —
// and the failure codes the core reports back (the DetailedErrorCode of the API's ErrorDetails).
package greengrass

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"
)

// Kind is the kind of a Greengrass V1 job document (wire.Document's Kind).
const Kind = "greengrass"

// Deployment types the core is handed (the API's DeploymentType). A ResetDeployment document carries no group
// version: the core stops its functions and removes what the group's deployments left on it.
const (
	TypeNew   = "NewDeployment"
	TypeRedo  = "Redeployment"
	TypeReset = "ResetDeployment"
	// TypeBulk is a bulk deployment's document: one group deployment per core, in Bulk.
	TypeBulk = "BulkDeployment"
)

// Detailed error codes the core reports (statusDetails failureCode), which the API answers as ErrorDetails.
const (
	// CodeResourceDownload: an S3 resource could not be downloaded (missing object, refused request).
	CodeResourceDownload = "GG-RESOURCE-DOWNLOAD"
	// CodeResourceChecksum: an S3 resource's bytes are not the object the deployment named (ETag).
	CodeResourceChecksum = "GG-RESOURCE-CHECKSUM"
	// CodeResourceArchive: an S3 resource is not an archive the core can unpack.
	CodeResourceArchive = "GG-RESOURCE-ARCHIVE"
	// CodeFunctionFailed: a function the deployment starts exited with a non-zero status.
	CodeFunctionFailed = "GG-FUNCTION-FAILED"
	// CodeCoreMismatch: the document names another thing as the group's core.
	CodeCoreMismatch = "GG-CORE-MISMATCH"
	// CodeDeviceError: any other failure on the core (disk, permissions, a script the family cannot run).
	CodeDeviceError = "GG-CORE-ERROR"
)

// Document is a Greengrass V1 deployment as the core receives it.
type Document struct {
	DeploymentID   string `json:"deploymentId"`
	DeploymentType string `json:"deploymentType"`
	GroupID        string `json:"groupId"`
	// GroupVersionID is the group version deployed; empty for a reset.
	GroupVersionID string `json:"groupVersionId,omitempty"`
	// Core is the group's core: the thing that carries the deployment out.
	Core          Core           `json:"core"`
	Functions     []Function     `json:"functions,omitempty"`
	Subscriptions []Subscription `json:"subscriptions,omitempty"`
	Resources     []Resource     `json:"resources,omitempty"`
	// Bulk holds, in a bulk deployment's document, each core's group deployment by the core's thing name.
	Bulk map[string]Document `json:"bulk,omitempty"`
}

// ForThing returns the group deployment thing carries out: the document itself, or its entry in Bulk. ok is
// false when a bulk document has none for thing.
func (d Document) ForThing(thing string) (Document, bool) {
	if d.DeploymentType != TypeBulk {
		return d, true
	}
	g, ok := d.Bulk[thing]
	return g, ok
}

// Core is the group's core entry.
type Core struct {
	ID             string `json:"id"`
	ThingArn       string `json:"thingArn"`
	CertificateArn string `json:"certificateArn"`
	SyncShadow     bool   `json:"syncShadow,omitempty"`
}

// Function is one function of the group. Executable is the shell command the core runs for it, from the
// deployed version's directory, with Environment and the core's own variables.
type Function struct {
	ID          string            `json:"id"`
	FunctionArn string            `json:"functionArn"`
	Executable  string            `json:"executable"`
	ExecArgs    string            `json:"execArgs,omitempty"`
	Pinned      bool              `json:"pinned,omitempty"`
	Timeout     int               `json:"timeout,omitempty"`
	MemorySize  int               `json:"memorySize,omitempty"`
	Environment map[string]string `json:"environment,omitempty"`
}

// Subscription is one route of the group's messages.
type Subscription struct {
	ID      string `json:"id"`
	Source  string `json:"source"`
	Subject string `json:"subject"`
	Target  string `json:"target"`
}

// Resource is one resource of the group. An S3 resource is an archive (tar.gz) the core downloads, checks
// against ETag and unpacks at DestinationPath under the deployed version; a local volume is only recorded.
type Resource struct {
	ID          string       `json:"id"`
	Name        string       `json:"name"`
	S3          *S3Resource  `json:"s3,omitempty"`
	LocalVolume *LocalVolume `json:"localVolume,omitempty"`
}

// S3Resource is an S3MachineLearningModelResourceData, with the object's ETag as the service saw it.
type S3Resource struct {
	Bucket          string `json:"bucket"`
	Key             string `json:"key"`
	ETag            string `json:"etag,omitempty"`
	DestinationPath string `json:"destinationPath"`
}

// LocalVolume is a LocalVolumeResourceData.
type LocalVolume struct {
	SourcePath      string `json:"sourcePath"`
	DestinationPath string `json:"destinationPath"`
}

// ThingName returns the thing name of a thing ARN (arn:aws:iot:<region>:<account>:thing/<name>), or "" when
// thingArn is not one.
func ThingName(thingArn string) string {
	parts := strings.SplitN(thingArn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "iot" {
		return ""
	}
	name, ok := strings.CutPrefix(parts[5], "thing/")
	if !ok || name == "" || strings.Contains(name, "/") {
		return ""
	}
	return name
}

// ResourceDir is the directory, relative to the deployed version, an S3 resource is unpacked into: its
// DestinationPath made relative and clean. ok is false for a path that would leave the version.
func ResourceDir(dest string) (dir string, ok bool) {
	p := path.Clean("/" + strings.TrimSpace(dest))
	if p == "/" {
		return "", false
	}
	p = strings.TrimPrefix(p, "/")
	if p == ".." || strings.HasPrefix(p, "../") {
		return "", false
	}
	return "resources/" + p, true
}

// Validate checks what the core relies on.
func (d Document) Validate() error {
	if d.DeploymentType == TypeBulk {
		if d.DeploymentID == "" {
			return errors.New("greengrass document: deploymentId is missing")
		}
		for thing, g := range d.Bulk {
			if g.DeploymentType == TypeBulk {
				return errors.New("greengrass document: a bulk deployment inside a bulk deployment")
			}
			if err := g.Validate(); err != nil {
				return fmt.Errorf("bulk entry %s: %w", thing, err)
			}
			if ThingName(g.Core.ThingArn) != thing {
				return fmt.Errorf("greengrass document: bulk entry %s is the deployment of core %s", thing, g.Core.ThingArn)
			}
		}
		return nil
	}
	if d.DeploymentID == "" {
		return errors.New("greengrass document: deploymentId is missing")
	}
	if d.GroupID == "" {
		return errors.New("greengrass document: groupId is missing")
	}
	switch d.DeploymentType {
	case TypeNew, TypeRedo:
		if d.GroupVersionID == "" {
			return errors.New("greengrass document: groupVersionId is missing")
		}
	case TypeReset:
	default:
		return fmt.Errorf("greengrass document: deploymentType %q is not NewDeployment, Redeployment or ResetDeployment",
			d.DeploymentType)
	}
	if ThingName(d.Core.ThingArn) == "" {
		return fmt.Errorf("greengrass document: core thingArn %q is not a thing ARN", d.Core.ThingArn)
	}
	seen := map[string]bool{}
	for i, f := range d.Functions {
		if f.ID == "" || seen["f/"+f.ID] {
			return fmt.Errorf("greengrass document: functions[%d]: id %q is empty or repeated", i, f.ID)
		}
		seen["f/"+f.ID] = true
		if strings.TrimSpace(f.Executable) == "" {
			return fmt.Errorf("greengrass document: function %s has no executable", f.ID)
		}
		if strings.ContainsAny(f.Executable, "\n\r") {
			return fmt.Errorf("greengrass document: function %s: the executable is more than one line", f.ID)
		}
	}
	for i, r := range d.Resources {
		if r.ID == "" || seen["r/"+r.ID] {
			return fmt.Errorf("greengrass document: resources[%d]: id %q is empty or repeated", i, r.ID)
		}
		seen["r/"+r.ID] = true
		if r.S3 != nil {
			if r.S3.Bucket == "" || r.S3.Key == "" {
				return fmt.Errorf("greengrass document: resource %s: no S3 object", r.ID)
			}
			if _, ok := ResourceDir(r.S3.DestinationPath); !ok {
				return fmt.Errorf("greengrass document: resource %s: destination path %q leaves the core's directory",
					r.ID, r.S3.DestinationPath)
			}
		}
	}
	return nil
}

// Envelope wraps d in the wire.Document of kind Kind.
func (d Document) Envelope() (wire.Document, error) {
	payload, err := json.Marshal(d)
	if err != nil {
		return wire.Document{}, fmt.Errorf("encode greengrass document: %w", err)
	}
	return wire.Document{Kind: Kind, Payload: payload}, nil
}

// FromEnvelope returns the Greengrass V1 document in env, validated; another kind is an error.
func FromEnvelope(env wire.Document) (Document, error) {
	if env.Kind != Kind {
		return Document{}, fmt.Errorf("job document is of kind %q, not %q", env.Kind, Kind)
	}
	var d Document
	if err := json.Unmarshal(env.Payload, &d); err != nil {
		return Document{}, fmt.Errorf("decode greengrass document: %w", err)
	}
	if err := d.Validate(); err != nil {
		return Document{}, err
	}
	return d, nil
}
