package greengrass

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/fleetlab/fleetlab/sim/artifacts"
	"github.com/fleetlab/fleetlab/sim/awsapi"
	ggwire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/greengrass"
	"github.com/fleetlab/fleetlab/sim/engine"
	"github.com/fleetlab/fleetlab/sim/store"
)

// Bulk deployment statuses (BulkDeploymentStatus).
const (
	BulkRunning   = "Running"
	BulkCompleted = "Completed"
	BulkStopped   = "Stopped"
	BulkFailed    = "Failed"
)

// MaxInputFile is the largest bulk deployment input file read (the API's limit is 100 MB).
const MaxInputFile = 100 << 20

const bucketBulk = bucketPrefix + ".bulk" // "<seq>" → bulk

// bulk is a bulk deployment: one engine deployment (its id) whose targets are the cores of its records' groups,
// each core handed its group's deployment (wire/greengrass.Document's Bulk).
type bulk struct {
	ID          string    `json:"id"`
	Created     time.Time `json:"created"`
	Key         string    `json:"key"`
	Deployments []string  `json:"deployments"` // the group deployments' ids, in input order
	Invalid     int       `json:"invalid"`
	Records     int       `json:"records"`
	Tags        any       `json:"tags,omitempty"`
}

// objectReader is what the artifact store gives beside ETags: an object's bytes.
type objectReader interface {
	Open(bucket, key string) (artifacts.Object, io.ReadSeekCloser, error)
}

func (s *Service) bulkARN(id string) string { return s.arn("/greengrass/bulk/deployments/" + id) }

// inputRecord is one line of a bulk deployment's input file.
type inputRecord struct {
	GroupID        string `json:"GroupId"`
	GroupVersionID string `json:"GroupVersionId"`
	DeploymentType string `json:"DeploymentType"`
}

func (s *Service) readInput(uri string) ([]byte, error) {
	bucket, key, ok := parseS3URI(uri)
	if !ok {
		return nil, invalidInput("InputFileUri %q is not s3://bucket/key.", uri)
	}
	or, ok := s.objects.(objectReader)
	if !ok {
		return nil, invalidInput("The input file %s cannot be read: the service has no artifact store.", uri)
	}
	_, rc, err := or.Open(bucket, key)
	if err != nil {
		return nil, invalidInput("The input file %s cannot be read.", uri)
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, MaxInputFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxInputFile {
		return nil, invalidInput("The input file %s is larger than 100 MB.", uri)
	}
	return data, nil
}

func (s *Service) startBulkDeployment(r *awsapi.Request) (any, error) {
	uri, _ := r.Input["InputFileUri"].(string)
	role, _ := r.Input["ExecutionRoleArn"].(string)
	if _, err := awsapi.ParseARN(role); err != nil {
		return nil, invalidInput("ExecutionRoleArn %q is not an ARN.", role)
	}
	scope := "StartBulkDeployment"
	s.mu.Lock()
	defer s.mu.Unlock()
	var token, hash, cached string
	if err := s.store.View(func(tx store.Tx) (err error) {
		token, hash, cached, err = s.tokenFor(tx, r, scope)
		return err
	}); err != nil {
		return nil, err
	}
	if cached != "" {
		return map[string]any{"BulkDeploymentArn": s.bulkARN(cached), "BulkDeploymentId": cached}, nil
	}
	data, err := s.readInput(uri)
	if err != nil {
		return nil, err
	}
	b := &bulk{ID: s.ids.UUID(), Created: s.clock.Now(), Tags: r.Input["tags"]}
	doc := ggwire.Document{DeploymentID: b.ID, DeploymentType: ggwire.TypeBulk, Bulk: map[string]ggwire.Document{}}
	var targets []string
	var deps []*deployment
	err = s.store.View(func(tx store.Tx) error {
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			line := bytes.TrimSpace(sc.Bytes())
			if len(line) == 0 {
				continue
			}
			b.Records++
			var rec inputRecord
			if json.Unmarshal(line, &rec) != nil || rec.DeploymentType != typeNew || rec.GroupID == "" {
				b.Invalid++
				continue
			}
			if _, err := s.loadGroup(tx, rec.GroupID); err != nil {
				b.Invalid++
				continue
			}
			v, err := s.loadGroupVersion(tx, rec.GroupID, rec.GroupVersionID)
			if err != nil {
				b.Invalid++
				continue
			}
			g, err := s.document(tx, rec.GroupID, v)
			var ae *awsapi.Error
			if errors.As(err, &ae) {
				b.Invalid++
				continue
			}
			if err != nil {
				return err
			}
			thing := ggwire.ThingName(g.Core.ThingArn)
			if _, dup := doc.Bulk[thing]; dup {
				b.Invalid++ // a core carries out one group's deployment at a time
				continue
			}
			g.DeploymentID, g.DeploymentType, g.GroupVersionID = s.ids.UUID(), typeNew, v.ID
			doc.Bulk[thing] = g
			targets = append(targets, thing)
			deps = append(deps, &deployment{ID: g.DeploymentID, GroupID: g.GroupID, Type: typeNew,
				GroupVersionID: v.ID, Core: g.Core, Created: b.Created, Engine: b.ID})
		}
		if err := sc.Err(); err != nil {
			return invalidInput("The input file %s is not line-delimited JSON: %v", uri, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, d := range deps {
		b.Deployments = append(b.Deployments, d.ID)
	}
	write := func(tx store.Tx) error {
		for _, d := range deps {
			if err := s.record(tx, d, "", "", ""); err != nil {
				return err
			}
		}
		_, seq, err := s.rec.NextKey(tx)
		if err != nil {
			return err
		}
		b.Key = fmt.Sprintf("%016d", seq)
		if err := awsapi.PutJSON(tx, bucketBulk, b.Key, b); err != nil {
			return err
		}
		if err := s.rec.Index(tx, "bulk/"+b.ID, "bulk", b.Key); err != nil {
			return err
		}
		if token != "" {
			return s.tokens.Record(tx, scope, token, hash, b.ID)
		}
		return nil
	}
	if len(targets) == 0 {
		err = s.store.Update(write)
	} else {
		env, eerr := doc.Envelope()
		if eerr != nil {
			return nil, eerr
		}
		raw, jerr := json.Marshal(env)
		if jerr != nil {
			return nil, jerr
		}
		_, err = s.engine.CreateWith(engine.Spec{ID: b.ID, Kind: Kind, OnActive: engine.Allow, Targets: targets,
			Document: raw}, write)
	}
	if err != nil {
		return nil, fmt.Errorf("start bulk deployment: %w", err)
	}
	return map[string]any{"BulkDeploymentArn": s.bulkARN(b.ID), "BulkDeploymentId": b.ID}, nil
}

func (s *Service) loadBulk(tx store.Tx, id string) (*bulk, error) {
	_, key, found, err := s.rec.Lookup(tx, "bulk/"+id)
	if err != nil {
		return nil, err
	}
	if found {
		if b, err := awsapi.LoadKey[bulk](tx, bucketBulk, key); err != nil || b != nil {
			return b, err
		}
	}
	return nil, resourceNotFound("Bulk deployment %s does not exist.", id)
}

// bulkStatus is Running while its engine deployment runs, Stopped once stopped, else Completed.
func (s *Service) bulkStatus(b *bulk) string {
	if len(b.Deployments) == 0 {
		return BulkCompleted
	}
	d, err := s.engine.Deployment(b.ID)
	if err != nil {
		return BulkFailed
	}
	switch {
	case d.Status == engine.StatusCanceled:
		return BulkStopped
	case !d.Status.Terminal():
		return BulkRunning
	}
	xs, _ := s.engine.Executions(b.ID)
	for _, x := range xs {
		if !x.Status.Terminal() {
			return BulkRunning
		}
	}
	return BulkCompleted
}

func (s *Service) getBulkDeploymentStatus(r *awsapi.Request) (any, error) {
	id, _ := r.Input["BulkDeploymentId"].(string)
	var b *bulk
	if err := s.store.View(func(tx store.Tx) (err error) {
		b, err = s.loadBulk(tx, id)
		return err
	}); err != nil {
		return nil, err
	}
	return map[string]any{"BulkDeploymentStatus": s.bulkStatus(b), "CreatedAt": awsapi.ISO8601(b.Created),
		"BulkDeploymentMetrics": map[string]any{"InvalidInputRecords": b.Invalid, "RecordsProcessed": b.Records,
			"RetryAttempts": 0}, "tags": b.Tags}, nil
}

func (s *Service) listBulkDeploymentDetailedReports(r *awsapi.Request) (any, error) {
	id, _ := r.Input["BulkDeploymentId"].(string)
	type item struct {
		key string
		out map[string]any
	}
	var items []item
	err := s.store.View(func(tx store.Tx) error {
		b, err := s.loadBulk(tx, id)
		if err != nil {
			return err
		}
		for i, did := range b.Deployments {
			_, key, found, err := s.rec.Lookup(tx, "deployment/"+did)
			if err != nil || !found {
				return err
			}
			d, err := awsapi.LoadKey[deployment](tx, bucketDeployments, key)
			if err != nil || d == nil {
				return err
			}
			st := s.statusOf(d)
			out := map[string]any{"CreatedAt": awsapi.ISO8601(d.Created), "DeploymentArn": s.deploymentARN(d.GroupID, d.ID),
				"DeploymentId": d.ID, "DeploymentStatus": st.Status, "DeploymentType": d.Type,
				"GroupArn": s.groupVersionARN(d.GroupID, d.GroupVersionID)}
			if st.Status == StatusFailure {
				out["ErrorMessage"], out["ErrorDetails"] = st.Message, st.Details
			}
			items = append(items, item{key: fmt.Sprintf("%08d", i), out: out})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	got, next, err := page(r.Input, "ListBulkDeploymentDetailedReports/"+id, items, func(i item) string { return i.key })
	if err != nil {
		return nil, err
	}
	out := make([]map[string]any, len(got))
	for i, it := range got {
		out[i] = it.out
	}
	return map[string]any{"Deployments": out, "NextToken": omitEmpty(next)}, nil
}

func (s *Service) listBulkDeployments(r *awsapi.Request) (any, error) {
	type item struct {
		key string
		out map[string]any
	}
	var items []item
	err := s.store.View(func(tx store.Tx) error {
		return awsapi.Each(tx, bucketBulk, func(b *bulk) error {
			items = append(items, item{key: b.Key, out: map[string]any{"BulkDeploymentArn": s.bulkARN(b.ID),
				"BulkDeploymentId": b.ID, "CreatedAt": awsapi.ISO8601(b.Created)}})
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	got, next, err := page(r.Input, "ListBulkDeployments", items, func(i item) string { return i.key })
	if err != nil {
		return nil, err
	}
	out := make([]map[string]any, len(got))
	for i, it := range got {
		out[i] = it.out
	}
	return map[string]any{"BulkDeployments": out, "NextToken": omitEmpty(next)}, nil
}

// stopBulkDeployment cancels the bulk's engine deployment: the group deployments not yet taken by their cores
// end as Failure; those in progress run to their end.
func (s *Service) stopBulkDeployment(r *awsapi.Request) (any, error) {
	id, _ := r.Input["BulkDeploymentId"].(string)
	var b *bulk
	if err := s.store.View(func(tx store.Tx) (err error) {
		b, err = s.loadBulk(tx, id)
		return err
	}); err != nil {
		return nil, err
	}
	if st := s.bulkStatus(b); st != BulkRunning {
		return nil, badRequestf("Bulk deployment %s is %s; only a running one can be stopped.", id, st)
	}
	if _, err := s.engine.Cancel(b.ID, "stopped by StopBulkDeployment"); err != nil {
		return nil, fmt.Errorf("stop bulk deployment: %w", err)
	}
	return struct{}{}, nil
}
