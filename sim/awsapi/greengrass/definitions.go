package greengrass

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/fleetlab/fleetlab/sim/awsapi"
	ggwire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/greengrass"
	"github.com/fleetlab/fleetlab/sim/store"
)

// defType is one kind of definition: its name in operations ("Core"), in paths ("cores") and the members of
// its versions.
type defType struct {
	op, path string
	members  []string
	validate func(s *Service, body json.RawMessage) error
}

var defTypes = []defType{
	{op: "Core", path: "cores", members: []string{"Cores"}, validate: validateCores},
	{op: "Function", path: "functions", members: []string{"DefaultConfig", "Functions"}, validate: validateFunctions},
	{op: "Subscription", path: "subscriptions", members: []string{"Subscriptions"}, validate: validateSubscriptions},
	{op: "Resource", path: "resources", members: []string{"Resources"}, validate: validateResources},
}

func defTypeOf(path string) (defType, bool) {
	for _, t := range defTypes {
		if t.path == path {
			return t, true
		}
	}
	return defType{}, false
}

// definition is a definition as the store keeps it.
type definition struct {
	Type          string    `json:"type"`
	ID            string    `json:"id"`
	Name          string    `json:"name,omitempty"`
	Created       time.Time `json:"created"`
	Updated       time.Time `json:"updated"`
	LatestVersion string    `json:"latestVersion,omitempty"`
	Tags          any       `json:"tags,omitempty"`
}

// defVersion is one version of a definition.
type defVersion struct {
	Type    string          `json:"type"`
	DefID   string          `json:"defId"`
	ID      string          `json:"id"`
	Created time.Time       `json:"created"`
	Body    json.RawMessage `json:"body"`
}

func (s *Service) defARN(t, id string) string { return s.arn("/greengrass/definition/" + t + "/" + id) }

func (s *Service) defVersionARN(t, id, vid string) string {
	return s.defARN(t, id) + "/versions/" + vid
}

// definitionOut is the answer of Create/Get*Definition and an entry of List*Definitions.
type definitionOut struct {
	Arn                  string         `json:"Arn"`
	CreationTimestamp    awsapi.ISO8601 `json:"CreationTimestamp"`
	ID                   string         `json:"Id"`
	LastUpdatedTimestamp awsapi.ISO8601 `json:"LastUpdatedTimestamp"`
	LatestVersion        string         `json:"LatestVersion,omitempty"`
	LatestVersionArn     string         `json:"LatestVersionArn,omitempty"`
	Name                 string         `json:"Name,omitempty"`
	Tags                 any            `json:"tags,omitempty"`
}

func (s *Service) defOut(d *definition) definitionOut {
	out := definitionOut{Arn: s.defARN(d.Type, d.ID), CreationTimestamp: awsapi.ISO8601(d.Created), ID: d.ID,
		LastUpdatedTimestamp: awsapi.ISO8601(d.Updated), LatestVersion: d.LatestVersion, Name: d.Name, Tags: d.Tags}
	if d.LatestVersion != "" {
		out.LatestVersionArn = s.defVersionARN(d.Type, d.ID, d.LatestVersion)
	}
	return out
}

// versionOut is the answer of Create*Version and an entry of List*Versions.
type versionOut struct {
	Arn               string         `json:"Arn"`
	CreationTimestamp awsapi.ISO8601 `json:"CreationTimestamp"`
	ID                string         `json:"Id"`
	Version           string         `json:"Version"`
}

// versionBody picks the members of a definition version out of a document.
func versionBody(t defType, doc map[string]any) (json.RawMessage, error) {
	body := map[string]any{}
	for _, m := range t.members {
		if v, ok := doc[m]; ok {
			body[m] = v
		}
	}
	return json.Marshal(body)
}

func (s *Service) createDefinition(t defType) func(*awsapi.Request) (any, error) {
	return func(r *awsapi.Request) (any, error) {
		name, _ := r.Input["Name"].(string)
		var body json.RawMessage
		if iv, ok := r.Input["InitialVersion"].(map[string]any); ok {
			b, err := versionBody(t, iv)
			if err != nil {
				return nil, err
			}
			if err := t.validate(s, b); err != nil {
				return nil, err
			}
			body = b
		}
		token, _ := r.Input["AmznClientToken"].(string)
		hash := awsapi.RequestHash(r.Input, "AmznClientToken")
		scope := "Create" + t.op + "Definition"
		var out *definition
		s.mu.Lock()
		defer s.mu.Unlock()
		err := s.store.Update(func(tx store.Tx) error {
			if token != "" {
				id, found, err := s.tokens.Lookup(tx, scope, token, hash)
				if err == awsapi.ErrTokenMismatch {
					return invalidInput("The client token %s was used with other parameters.", token)
				}
				if err != nil {
					return err
				}
				if found {
					out, err = awsapi.LoadKey[definition](tx, bucketDefinitions, t.path+"/"+id)
					if err != nil || out != nil {
						return err
					}
				}
			}
			now := s.clock.Now()
			d := &definition{Type: t.path, ID: s.ids.UUID(), Name: name, Created: now, Updated: now, Tags: r.Input["tags"]}
			if body != nil {
				v, err := s.putVersion(tx, t, d.ID, body, now)
				if err != nil {
					return err
				}
				d.LatestVersion = v.ID
			}
			if err := awsapi.PutJSON(tx, bucketDefinitions, t.path+"/"+d.ID, d); err != nil {
				return err
			}
			if token != "" {
				if err := s.tokens.Record(tx, scope, token, hash, d.ID); err != nil {
					return err
				}
			}
			out = d
			return nil
		})
		if err != nil {
			return nil, err
		}
		o := s.defOut(out)
		o.Tags = nil
		return o, nil
	}
}

// putVersion writes a new version of definition id and indexes what the deployment side finds by it.
func (s *Service) putVersion(tx store.Tx, t defType, id string, body json.RawMessage, now time.Time) (*defVersion, error) {
	_, seq, err := s.rec.NextKey(tx)
	if err != nil {
		return nil, err
	}
	v := &defVersion{Type: t.path, DefID: id, ID: s.ids.UUID(), Created: now, Body: body}
	if err := awsapi.PutJSON(tx, bucketDefVersions, fmt.Sprintf("%s/%s/%016d", t.path, id, seq), v); err != nil {
		return nil, err
	}
	if err := s.rec.Index(tx, "defversion/"+v.ID, t.path, fmt.Sprintf("%s/%s/%016d", t.path, id, seq)); err != nil {
		return nil, err
	}
	if t.path == "cores" {
		var cv coreVersion
		if err := json.Unmarshal(body, &cv); err == nil {
			for _, c := range cv.Cores {
				if name := ggwire.ThingName(c.ThingArn); name != "" {
					if err := s.rec.Index(tx, "thing/"+name, "cores", id); err != nil {
						return nil, err
					}
				}
			}
		}
	}
	return v, nil
}

func (s *Service) loadDefinition(tx store.Tx, t defType, id string) (*definition, error) {
	d, err := awsapi.LoadKey[definition](tx, bucketDefinitions, t.path+"/"+id)
	if err != nil {
		return nil, err
	}
	if d == nil {
		return nil, idNotFound("That %s definition does not exist.", strings.ToLower(t.op))
	}
	return d, nil
}

// loadVersion finds version vid of definition id of type t.
func (s *Service) loadVersion(tx store.Tx, t defType, id, vid string) (*defVersion, error) {
	kind, key, found, err := s.rec.Lookup(tx, "defversion/"+vid)
	if err != nil {
		return nil, err
	}
	if found && kind == t.path {
		v, err := awsapi.LoadKey[defVersion](tx, bucketDefVersions, key)
		if err != nil {
			return nil, err
		}
		if v != nil && v.DefID == id {
			return v, nil
		}
	}
	return nil, versionNotFound("Version %s of %s definition %s does not exist.", vid, strings.ToLower(t.op), id)
}

func (s *Service) createDefinitionVersion(t defType) func(*awsapi.Request) (any, error) {
	return func(r *awsapi.Request) (any, error) {
		id, _ := r.Input[t.op+"DefinitionId"].(string)
		body, err := versionBody(t, r.Input)
		if err != nil {
			return nil, err
		}
		if err := t.validate(s, body); err != nil {
			return nil, err
		}
		token, _ := r.Input["AmznClientToken"].(string)
		hash := awsapi.RequestHash(r.Input, "AmznClientToken")
		scope := "Create" + t.op + "DefinitionVersion"
		var v *defVersion
		s.mu.Lock()
		defer s.mu.Unlock()
		err = s.store.Update(func(tx store.Tx) error {
			d, err := s.loadDefinition(tx, t, id)
			if err != nil {
				return err
			}
			if token != "" {
				vid, found, err := s.tokens.Lookup(tx, scope, token, hash)
				if err == awsapi.ErrTokenMismatch {
					return invalidInput("The client token %s was used with other parameters.", token)
				}
				if err != nil {
					return err
				}
				if found {
					if v, err = s.loadVersion(tx, t, id, vid); err == nil {
						return nil
					}
				}
			}
			now := s.clock.Now()
			if v, err = s.putVersion(tx, t, id, body, now); err != nil {
				return err
			}
			d.LatestVersion, d.Updated = v.ID, now
			if err := awsapi.PutJSON(tx, bucketDefinitions, t.path+"/"+id, d); err != nil {
				return err
			}
			if token != "" {
				return s.tokens.Record(tx, scope, token, hash, v.ID)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		return versionOut{Arn: s.defVersionARN(t.path, id, v.ID), CreationTimestamp: awsapi.ISO8601(v.Created), ID: id,
			Version: v.ID}, nil
	}
}

func (s *Service) getDefinition(t defType) func(*awsapi.Request) (any, error) {
	return func(r *awsapi.Request) (any, error) {
		id, _ := r.Input[t.op+"DefinitionId"].(string)
		var d *definition
		err := s.store.View(func(tx store.Tx) (err error) {
			d, err = s.loadDefinition(tx, t, id)
			return err
		})
		if err != nil {
			return nil, err
		}
		return s.defOut(d), nil
	}
}

func (s *Service) getDefinitionVersion(t defType) func(*awsapi.Request) (any, error) {
	return func(r *awsapi.Request) (any, error) {
		id, _ := r.Input[t.op+"DefinitionId"].(string)
		vid, _ := r.Input[t.op+"DefinitionVersionId"].(string)
		var v *defVersion
		err := s.store.View(func(tx store.Tx) error {
			if _, err := s.loadDefinition(tx, t, id); err != nil {
				return err
			}
			var err error
			v, err = s.loadVersion(tx, t, id, vid)
			return err
		})
		if err != nil {
			return nil, err
		}
		return map[string]any{"Arn": s.defVersionARN(t.path, id, v.ID), "CreationTimestamp": awsapi.ISO8601(v.Created),
			"Id": id, "Version": v.ID, "Definition": v.Body}, nil
	}
}

// maxResults reads a MaxResults query member (a string in this model): 1 to 250 when given.
func maxResults(in map[string]any) (int, error) {
	raw, _ := in["MaxResults"].(string)
	if raw == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 || n > 250 {
		return 0, badRequestf("MaxResults %q is not a number from 1 to 250.", raw)
	}
	return n, nil
}

func page[T any](in map[string]any, scope string, items []T, key func(T) string) ([]T, string, error) {
	limit, err := maxResults(in)
	if err != nil {
		return nil, "", err
	}
	token, _ := in["NextToken"].(string)
	out, next, err := awsapi.Page(items, key, scope, token, limit)
	if err != nil {
		return nil, "", badRequestf("The NextToken is not valid.")
	}
	return out, next, nil
}

func (s *Service) listDefinitions(t defType) func(*awsapi.Request) (any, error) {
	return func(r *awsapi.Request) (any, error) {
		type item struct {
			key string
			out definitionOut
		}
		var items []item
		err := s.store.View(func(tx store.Tx) error {
			return awsapi.Each(tx, bucketDefinitions, func(d *definition) error {
				if d.Type == t.path {
					// Creation order: the creation time, then the id.
					items = append(items, item{key: fmt.Sprintf("%020d/%s", d.Created.UnixNano(), d.ID), out: s.defOut(d)})
				}
				return nil
			})
		})
		if err != nil {
			return nil, err
		}
		sortItems(items, func(i item) string { return i.key })
		got, next, err := page(r.Input, "List"+t.op+"Definitions", items, func(i item) string { return i.key })
		if err != nil {
			return nil, err
		}
		defs := make([]definitionOut, len(got))
		for i, it := range got {
			defs[i] = it.out
		}
		return map[string]any{"Definitions": defs, "NextToken": omitEmpty(next)}, nil
	}
}

func (s *Service) listDefinitionVersions(t defType) func(*awsapi.Request) (any, error) {
	return func(r *awsapi.Request) (any, error) {
		id, _ := r.Input[t.op+"DefinitionId"].(string)
		type item struct {
			key string
			out versionOut
		}
		var items []item
		err := s.store.View(func(tx store.Tx) error {
			if _, err := s.loadDefinition(tx, t, id); err != nil {
				return err
			}
			return tx.ForEach(bucketDefVersions, t.path+"/"+id+"/", func(k string, raw []byte) error {
				var v defVersion
				if err := json.Unmarshal(raw, &v); err != nil {
					return err
				}
				items = append(items, item{key: k, out: versionOut{Arn: s.defVersionARN(t.path, id, v.ID),
					CreationTimestamp: awsapi.ISO8601(v.Created), ID: id, Version: v.ID}})
				return nil
			})
		})
		if err != nil {
			return nil, err
		}
		got, next, err := page(r.Input, "List"+t.op+"DefinitionVersions/"+id, items, func(i item) string { return i.key })
		if err != nil {
			return nil, err
		}
		vs := make([]versionOut, len(got))
		for i, it := range got {
			vs[i] = it.out
		}
		return map[string]any{"Versions": vs, "NextToken": omitEmpty(next)}, nil
	}
}

func (s *Service) deleteDefinition(t defType) func(*awsapi.Request) (any, error) {
	return func(r *awsapi.Request) (any, error) {
		id, _ := r.Input[t.op+"DefinitionId"].(string)
		s.mu.Lock()
		defer s.mu.Unlock()
		err := s.store.Update(func(tx store.Tx) error {
			if _, err := s.loadDefinition(tx, t, id); err != nil {
				return err
			}
			// The versions stay: a group version and its deployments still name them.
			return tx.Delete(bucketDefinitions, t.path+"/"+id)
		})
		if err != nil {
			return nil, err
		}
		return struct{}{}, nil
	}
}

func (s *Service) updateDefinition(t defType) func(*awsapi.Request) (any, error) {
	return func(r *awsapi.Request) (any, error) {
		id, _ := r.Input[t.op+"DefinitionId"].(string)
		name, _ := r.Input["Name"].(string)
		s.mu.Lock()
		defer s.mu.Unlock()
		err := s.store.Update(func(tx store.Tx) error {
			d, err := s.loadDefinition(tx, t, id)
			if err != nil {
				return err
			}
			d.Name, d.Updated = name, s.clock.Now()
			return awsapi.PutJSON(tx, bucketDefinitions, t.path+"/"+id, d)
		})
		if err != nil {
			return nil, err
		}
		return struct{}{}, nil
	}
}

// The version bodies, as the model spells them.

type coreVersion struct {
	Cores []struct {
		CertificateArn string `json:"CertificateArn"`
		ID             string `json:"Id"`
		SyncShadow     bool   `json:"SyncShadow"`
		ThingArn       string `json:"ThingArn"`
	} `json:"Cores"`
}

type functionVersion struct {
	Functions []struct {
		FunctionArn           string `json:"FunctionArn"`
		ID                    string `json:"Id"`
		FunctionConfiguration *struct {
			Executable  string `json:"Executable"`
			ExecArgs    string `json:"ExecArgs"`
			MemorySize  int    `json:"MemorySize"`
			Pinned      bool   `json:"Pinned"`
			Timeout     int    `json:"Timeout"`
			Environment *struct {
				Variables map[string]string `json:"Variables"`
			} `json:"Environment"`
		} `json:"FunctionConfiguration"`
	} `json:"Functions"`
}

type subscriptionVersion struct {
	Subscriptions []struct {
		ID      string `json:"Id"`
		Source  string `json:"Source"`
		Subject string `json:"Subject"`
		Target  string `json:"Target"`
	} `json:"Subscriptions"`
}

type resourceVersion struct {
	Resources []struct {
		ID                    string `json:"Id"`
		Name                  string `json:"Name"`
		ResourceDataContainer struct {
			S3MachineLearningModelResourceData *struct {
				DestinationPath string `json:"DestinationPath"`
				S3Uri           string `json:"S3Uri"`
			} `json:"S3MachineLearningModelResourceData"`
			LocalVolumeResourceData *struct {
				DestinationPath string `json:"DestinationPath"`
				SourcePath      string `json:"SourcePath"`
			} `json:"LocalVolumeResourceData"`
			LocalDeviceResourceData                   any `json:"LocalDeviceResourceData"`
			SageMakerMachineLearningModelResourceData any `json:"SageMakerMachineLearningModelResourceData"`
			SecretsManagerSecretResourceData          any `json:"SecretsManagerSecretResourceData"`
		} `json:"ResourceDataContainer"`
	} `json:"Resources"`
}

func validateCores(_ *Service, body json.RawMessage) error {
	var v coreVersion
	if err := json.Unmarshal(body, &v); err != nil {
		return badRequest("The core definition version does not decode: " + err.Error())
	}
	if len(v.Cores) != 1 {
		return invalidInput("A core definition version has exactly one core, not %d.", len(v.Cores))
	}
	c := v.Cores[0]
	if ggwire.ThingName(c.ThingArn) == "" {
		return invalidInput("Core %s: ThingArn %q is not the ARN of a thing.", c.ID, c.ThingArn)
	}
	if !strings.HasPrefix(c.CertificateArn, "arn:") {
		return invalidInput("Core %s: CertificateArn %q is not an ARN.", c.ID, c.CertificateArn)
	}
	return nil
}

func validateFunctions(_ *Service, body json.RawMessage) error {
	var v functionVersion
	if err := json.Unmarshal(body, &v); err != nil {
		return badRequest("The function definition version does not decode: " + err.Error())
	}
	seen := map[string]bool{}
	for _, f := range v.Functions {
		if seen[f.ID] {
			return invalidInput("Function id %s is used twice.", f.ID)
		}
		seen[f.ID] = true
		if !strings.HasPrefix(f.FunctionArn, "arn:aws:lambda:") {
			return invalidInput("Function %s: FunctionArn %q is not a Lambda function ARN.", f.ID, f.FunctionArn)
		}
		if f.FunctionConfiguration == nil || strings.TrimSpace(f.FunctionConfiguration.Executable) == "" {
			return invalidInput("Function %s: FunctionConfiguration.Executable is required (the command the core runs).", f.ID)
		}
		if strings.ContainsAny(f.FunctionConfiguration.Executable, "\r\n") {
			return invalidInput("Function %s: the Executable is more than one line.", f.ID)
		}
		if t := f.FunctionConfiguration.Timeout; t < 0 {
			return invalidInput("Function %s: Timeout %d is negative.", f.ID, t)
		}
	}
	return nil
}

func validateSubscriptions(_ *Service, body json.RawMessage) error {
	var v subscriptionVersion
	if err := json.Unmarshal(body, &v); err != nil {
		return badRequest("The subscription definition version does not decode: " + err.Error())
	}
	seen := map[string]bool{}
	for _, sub := range v.Subscriptions {
		if seen[sub.ID] {
			return invalidInput("Subscription id %s is used twice.", sub.ID)
		}
		seen[sub.ID] = true
	}
	return nil
}

func validateResources(_ *Service, body json.RawMessage) error {
	var v resourceVersion
	if err := json.Unmarshal(body, &v); err != nil {
		return badRequest("The resource definition version does not decode: " + err.Error())
	}
	seen := map[string]bool{}
	for _, r := range v.Resources {
		if seen[r.ID] {
			return invalidInput("Resource id %s is used twice.", r.ID)
		}
		seen[r.ID] = true
		c := r.ResourceDataContainer
		switch {
		case c.S3MachineLearningModelResourceData != nil:
			d := c.S3MachineLearningModelResourceData
			if _, _, ok := parseS3URI(d.S3Uri); !ok {
				return invalidInput("Resource %s: S3Uri %q is not s3://bucket/key.", r.ID, d.S3Uri)
			}
			if _, ok := ggwire.ResourceDir(d.DestinationPath); !ok {
				return invalidInput("Resource %s: DestinationPath %q is not a path under the core's directory.", r.ID,
					d.DestinationPath)
			}
		case c.LocalVolumeResourceData != nil:
			if !strings.HasPrefix(c.LocalVolumeResourceData.SourcePath, "/") {
				return invalidInput("Resource %s: SourcePath %q is not an absolute path.", r.ID,
					c.LocalVolumeResourceData.SourcePath)
			}
		case c.LocalDeviceResourceData != nil, c.SageMakerMachineLearningModelResourceData != nil,
			c.SecretsManagerSecretResourceData != nil:
			return badRequestf("Resource %s: only S3 machine learning model and local volume resources are served.", r.ID)
		default:
			return invalidInput("Resource %s has no ResourceDataContainer member.", r.ID)
		}
	}
	return nil
}

func parseS3URI(uri string) (bucket, key string, ok bool) {
	rest, found := strings.CutPrefix(uri, "s3://")
	if !found {
		return "", "", false
	}
	bucket, key, _ = strings.Cut(rest, "/")
	return bucket, key, bucket != "" && key != ""
}

func omitEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}
