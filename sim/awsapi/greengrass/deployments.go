package greengrass

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/fleetlab/fleetlab/sim/awsapi"
	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"
	ggwire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/greengrass"
	"github.com/fleetlab/fleetlab/sim/engine"
	"github.com/fleetlab/fleetlab/sim/store"
)

// Deployment types (DeploymentType).
const (
	typeNew        = ggwire.TypeNew
	typeRedeploy   = ggwire.TypeRedo
	typeReset      = ggwire.TypeReset
	typeForceReset = "ForceResetDeployment"
)

// Deployment statuses (GetDeploymentStatus's DeploymentStatus).
const (
	StatusBuilding   = "Building"
	StatusInProgress = "InProgress"
	StatusSuccess    = "Success"
	StatusFailure    = "Failure"
)

// deployment is a group deployment as the store keeps it. Its engine deployment has its id; a forced reset has
// none.
type deployment struct {
	ID             string      `json:"id"`
	GroupID        string      `json:"groupId"`
	Type           string      `json:"type"`
	GroupVersionID string      `json:"groupVersionId,omitempty"`
	Core           ggwire.Core `json:"core"`
	Created        time.Time   `json:"created"`
	Key            string      `json:"key"`
	// Engine is the engine deployment that carries it out when it is not its own (a bulk deployment's).
	Engine string `json:"engine,omitempty"`
}

func (d *deployment) isReset() bool { return d.Type == typeReset || d.Type == typeForceReset }

func (s *Service) deploymentARN(gid, did string) string {
	return s.groupARN(gid) + "/deployments/" + did
}

func (s *Service) latestDeployment(tx store.Tx, gid string) (*deployment, error) {
	var last *deployment
	err := tx.ForEach(bucketDeployments, gid+"/", func(_ string, raw []byte) error {
		var d deployment
		if err := json.Unmarshal(raw, &d); err != nil {
			return err
		}
		last = &d
		return nil
	})
	return last, err
}

// findDeployment returns deployment did of group gid, or InvalidInputException.
func (s *Service) findDeployment(tx store.Tx, gid, did string) (*deployment, error) {
	_, key, found, err := s.rec.Lookup(tx, "deployment/"+did)
	if err != nil {
		return nil, err
	}
	if found {
		d, err := awsapi.LoadKey[deployment](tx, bucketDeployments, key)
		if err != nil {
			return nil, err
		}
		if d != nil && d.GroupID == gid {
			return d, nil
		}
	}
	return nil, invalidInput("Deployment '%s' does not exist.", did)
}

// status is a deployment's status as GetDeploymentStatus tells it.
type status struct {
	Status    string
	UpdatedAt time.Time
	Message   string
	Details   []ErrorDetail
}

// statusOf reads what the core did with deployment d from its engine execution.
func (s *Service) statusOf(d *deployment) status {
	if d.Type == typeForceReset {
		return status{Status: StatusSuccess, UpdatedAt: d.Created}
	}
	eid := d.ID
	if d.Engine != "" {
		eid = d.Engine
	}
	x, err := s.engine.Execution(eid, ggwire.ThingName(d.Core.ThingArn))
	if err != nil {
		return status{Status: StatusBuilding, UpdatedAt: d.Created}
	}
	switch x.Status {
	case engine.ExecQueued:
		return status{Status: StatusBuilding, UpdatedAt: x.QueuedAt}
	case engine.ExecInProgress:
		return status{Status: StatusInProgress, UpdatedAt: x.StartedAt}
	case engine.ExecSucceeded:
		return status{Status: StatusSuccess, UpdatedAt: x.UpdatedAt}
	}
	code, reason := x.Reported.Code, x.Reported.Reason
	if code == "" {
		code = x.Details[wire.DetailFailureCode]
	}
	if reason == "" {
		reason = x.Details[wire.DetailReason]
	}
	switch {
	case x.Status == engine.ExecRejected && code == "":
		code = "GG-REJECTED"
	case code == "" && x.Reason != "":
		code = "GG-" + string(x.Status)
		reason = "The deployment ended on the service: " + x.Reason + "."
	}
	if reason == "" {
		reason = "The core reported the deployment " + string(x.Status) + "."
	}
	return status{Status: StatusFailure, UpdatedAt: x.UpdatedAt, Message: reason,
		Details: []ErrorDetail{{DetailedErrorCode: code, DetailedErrorMessage: reason}}}
}

type deploymentOut struct {
	DeploymentArn string `json:"DeploymentArn"`
	DeploymentID  string `json:"DeploymentId"`
}

func (s *Service) createDeployment(r *awsapi.Request) (any, error) {
	gid, _ := r.Input["GroupId"].(string)
	typ, _ := r.Input["DeploymentType"].(string)
	vid, _ := r.Input["GroupVersionId"].(string)
	redo, _ := r.Input["DeploymentId"].(string)
	scope := "CreateDeployment/" + gid
	s.mu.Lock()
	defer s.mu.Unlock()
	var (
		doc          ggwire.Document
		token, hash  string
		cached       string
		groupVersion string
	)
	err := s.store.View(func(tx store.Tx) error {
		if _, err := s.loadGroup(tx, gid); err != nil {
			return err
		}
		var err error
		if token, hash, cached, err = s.tokenFor(tx, r, scope); err != nil || cached != "" {
			return err
		}
		switch typ {
		case typeNew:
			if vid == "" {
				return invalidInput("A NewDeployment needs a GroupVersionId.")
			}
			groupVersion = vid
		case typeRedeploy:
			if redo == "" {
				return invalidInput("A Redeployment needs the DeploymentId of the deployment it deploys again.")
			}
			prev, err := s.findDeployment(tx, gid, redo)
			if err != nil {
				return err
			}
			if prev.isReset() {
				return invalidInput("Deployment '%s' is a reset; only a NewDeployment or a Redeployment can be deployed again.", redo)
			}
			groupVersion = prev.GroupVersionID
		default:
			return invalidInput("DeploymentType %s: only NewDeployment and Redeployment are valid here.", typ)
		}
		v, err := s.loadGroupVersion(tx, gid, groupVersion)
		if err != nil {
			return err
		}
		doc, err = s.document(tx, gid, v)
		return err
	})
	if err != nil {
		return nil, err
	}
	if cached != "" {
		return deploymentOut{DeploymentArn: s.deploymentARN(gid, cached), DeploymentID: cached}, nil
	}
	doc.DeploymentID, doc.DeploymentType, doc.GroupVersionID = s.ids.UUID(), typ, groupVersion
	if err := s.start(doc, token, hash, scope); err != nil {
		return nil, err
	}
	return deploymentOut{DeploymentArn: s.deploymentARN(gid, doc.DeploymentID), DeploymentID: doc.DeploymentID}, nil
}

// start creates the engine deployment of doc, recording the deployment (and its token) in the same commit.
func (s *Service) start(doc ggwire.Document, token, hash, scope string) error {
	env, err := doc.Envelope()
	if err != nil {
		return err
	}
	data, err := json.Marshal(env)
	if err != nil {
		return err
	}
	thing := ggwire.ThingName(doc.Core.ThingArn)
	spec := engine.Spec{ID: doc.DeploymentID, Kind: Kind, Group: doc.GroupID, OnActive: engine.Allow,
		Targets: []string{thing}, Document: data}
	_, err = s.engine.CreateWith(spec, func(tx store.Tx) error {
		return s.record(tx, &deployment{ID: doc.DeploymentID, GroupID: doc.GroupID, Type: doc.DeploymentType,
			GroupVersionID: doc.GroupVersionID, Core: doc.Core, Created: s.clock.Now()}, token, hash, scope)
	})
	if err != nil {
		return fmt.Errorf("create deployment: %w", err)
	}
	return nil
}

// record writes a deployment, its index entry and its token.
func (s *Service) record(tx store.Tx, d *deployment, token, hash, scope string) error {
	_, seq, err := s.rec.NextKey(tx)
	if err != nil {
		return err
	}
	d.Key = fmt.Sprintf("%s/%016d", d.GroupID, seq)
	if err := awsapi.PutJSON(tx, bucketDeployments, d.Key, d); err != nil {
		return err
	}
	if err := s.rec.Index(tx, "deployment/"+d.ID, "deployment", d.Key); err != nil {
		return err
	}
	if token != "" {
		return s.tokens.Record(tx, scope, token, hash, d.ID)
	}
	return nil
}

// document resolves group version v to the job document its core carries out.
func (s *Service) document(tx store.Tx, gid string, v *groupVersion) (ggwire.Document, error) {
	doc := ggwire.Document{GroupID: gid}
	coreARN := v.Definition["CoreDefinitionVersionArn"]
	if coreARN == "" {
		return doc, missingCore()
	}
	cv, err := s.resolveVersionARN(tx, "CoreDefinitionVersionArn", "cores", coreARN)
	if err != nil {
		return doc, err
	}
	var cores coreVersion
	if err := json.Unmarshal(cv.Body, &cores); err != nil || len(cores.Cores) == 0 {
		return doc, missingCore()
	}
	c := cores.Cores[0]
	doc.Core = ggwire.Core{ID: c.ID, ThingArn: c.ThingArn, CertificateArn: c.CertificateArn, SyncShadow: c.SyncShadow}
	if arn := v.Definition["FunctionDefinitionVersionArn"]; arn != "" {
		fv, err := s.resolveVersionARN(tx, "FunctionDefinitionVersionArn", "functions", arn)
		if err != nil {
			return doc, err
		}
		var fs functionVersion
		if err := json.Unmarshal(fv.Body, &fs); err != nil {
			return doc, err
		}
		for _, f := range fs.Functions {
			fn := ggwire.Function{ID: f.ID, FunctionArn: f.FunctionArn}
			if c := f.FunctionConfiguration; c != nil {
				fn.Executable, fn.ExecArgs, fn.Pinned, fn.Timeout, fn.MemorySize = c.Executable, c.ExecArgs, c.Pinned,
					c.Timeout, c.MemorySize
				if c.Environment != nil {
					fn.Environment = c.Environment.Variables
				}
			}
			doc.Functions = append(doc.Functions, fn)
		}
	}
	if arn := v.Definition["SubscriptionDefinitionVersionArn"]; arn != "" {
		sv, err := s.resolveVersionARN(tx, "SubscriptionDefinitionVersionArn", "subscriptions", arn)
		if err != nil {
			return doc, err
		}
		var ss subscriptionVersion
		if err := json.Unmarshal(sv.Body, &ss); err != nil {
			return doc, err
		}
		for _, sub := range ss.Subscriptions {
			doc.Subscriptions = append(doc.Subscriptions, ggwire.Subscription{ID: sub.ID, Source: sub.Source,
				Subject: sub.Subject, Target: sub.Target})
		}
	}
	if arn := v.Definition["ResourceDefinitionVersionArn"]; arn != "" {
		rv, err := s.resolveVersionARN(tx, "ResourceDefinitionVersionArn", "resources", arn)
		if err != nil {
			return doc, err
		}
		var rs resourceVersion
		if err := json.Unmarshal(rv.Body, &rs); err != nil {
			return doc, err
		}
		for _, res := range rs.Resources {
			out := ggwire.Resource{ID: res.ID, Name: res.Name}
			if d := res.ResourceDataContainer.S3MachineLearningModelResourceData; d != nil {
				bucket, key, _ := parseS3URI(d.S3Uri)
				out.S3 = &ggwire.S3Resource{Bucket: bucket, Key: key, DestinationPath: d.DestinationPath}
				if s.objects != nil {
					// A missing object is the core's to find: its download fails the deployment.
					if etag, err := s.objects.ETag(bucket, key); err == nil {
						out.S3.ETag = etag
					}
				}
			}
			if d := res.ResourceDataContainer.LocalVolumeResourceData; d != nil {
				out.LocalVolume = &ggwire.LocalVolume{SourcePath: d.SourcePath, DestinationPath: d.DestinationPath}
			}
			doc.Resources = append(doc.Resources, out)
		}
	}
	return doc, nil
}

func (s *Service) getDeploymentStatus(r *awsapi.Request) (any, error) {
	gid, _ := r.Input["GroupId"].(string)
	did, _ := r.Input["DeploymentId"].(string)
	var d *deployment
	err := s.store.View(func(tx store.Tx) error {
		if _, err := s.loadGroup(tx, gid); err != nil {
			return err
		}
		var err error
		d, err = s.findDeployment(tx, gid, did)
		return err
	})
	if err != nil {
		return nil, err
	}
	st := s.statusOf(d)
	out := map[string]any{"DeploymentStatus": st.Status, "DeploymentType": d.Type,
		"UpdatedAt": awsapi.ISO8601(st.UpdatedAt)}
	if st.Status == StatusFailure {
		out["ErrorMessage"] = st.Message
		out["ErrorDetails"] = st.Details
	}
	return out, nil
}

type deploymentItem struct {
	CreatedAt      awsapi.ISO8601 `json:"CreatedAt"`
	DeploymentArn  string         `json:"DeploymentArn"`
	DeploymentID   string         `json:"DeploymentId"`
	DeploymentType string         `json:"DeploymentType"`
	GroupArn       string         `json:"GroupArn"`
	key            string
}

func (s *Service) listDeployments(r *awsapi.Request) (any, error) {
	gid, _ := r.Input["GroupId"].(string)
	var items []deploymentItem
	err := s.store.View(func(tx store.Tx) error {
		if _, err := s.loadGroup(tx, gid); err != nil {
			return err
		}
		return tx.ForEach(bucketDeployments, gid+"/", func(k string, raw []byte) error {
			var d deployment
			if err := json.Unmarshal(raw, &d); err != nil {
				return err
			}
			// GroupArn is the ARN of the group version deployed, as the service sends it; a reset deploys none.
			groupArn := s.groupARN(gid)
			if d.GroupVersionID != "" {
				groupArn = s.groupVersionARN(gid, d.GroupVersionID)
			}
			items = append(items, deploymentItem{CreatedAt: awsapi.ISO8601(d.Created),
				DeploymentArn: s.deploymentARN(gid, d.ID), DeploymentID: d.ID, DeploymentType: d.Type,
				GroupArn: groupArn, key: k})
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	got, next, err := page(r.Input, "ListDeployments/"+gid, items, func(i deploymentItem) string { return i.key })
	if err != nil {
		return nil, err
	}
	if got == nil {
		got = []deploymentItem{}
	}
	return map[string]any{"Deployments": got, "NextToken": omitEmpty(next)}, nil
}

func (s *Service) resetDeployments(r *awsapi.Request) (any, error) {
	gid, _ := r.Input["GroupId"].(string)
	force, _ := r.Input["Force"].(bool)
	scope := "ResetDeployments/" + gid
	s.mu.Lock()
	defer s.mu.Unlock()
	var (
		token, hash, cached string
		last                *deployment
	)
	err := s.store.View(func(tx store.Tx) error {
		if _, err := s.loadGroup(tx, gid); err != nil {
			return err
		}
		var err error
		if token, hash, cached, err = s.tokenFor(tx, r, scope); err != nil || cached != "" {
			return err
		}
		last, err = s.latestDeployment(tx, gid)
		return err
	})
	if err != nil {
		return nil, err
	}
	if cached != "" {
		return deploymentOut{DeploymentArn: s.deploymentARN(gid, cached), DeploymentID: cached}, nil
	}
	if last != nil {
		if st := s.statusOf(last).Status; st == StatusBuilding || st == StatusInProgress {
			return nil, badRequestf("Group %s has a deployment that is %s; a reset can start once it has ended.", gid, st)
		}
	}
	if !force && (last == nil || last.isReset()) {
		return nil, resourceNotFound("Group id: %s has not been deployed or has already been reset.", gid)
	}
	id := s.ids.UUID()
	if force {
		d := &deployment{ID: id, GroupID: gid, Type: typeForceReset, Created: s.clock.Now()}
		if last != nil {
			d.Core = last.Core
		}
		if err := s.store.Update(func(tx store.Tx) error { return s.record(tx, d, token, hash, scope) }); err != nil {
			return nil, err
		}
	} else {
		doc := ggwire.Document{DeploymentID: id, DeploymentType: typeReset, GroupID: gid, Core: last.Core}
		if err := s.start(doc, token, hash, scope); err != nil {
			if errors.Is(err, engine.ErrInvalid) {
				return nil, invalidInput("%v", err)
			}
			return nil, err
		}
	}
	return deploymentOut{DeploymentArn: s.deploymentARN(gid, id), DeploymentID: id}, nil
}

func jsonUnmarshal(raw []byte, v any) error { return json.Unmarshal(raw, v) }
