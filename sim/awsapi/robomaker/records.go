package robomaker

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/fleetlab/fleetlab/sim/awsapi"
	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"
	"github.com/fleetlab/fleetlab/sim/store"
)

// Store layout. Resources are keyed by a zero-padded sequence number, so iteration is creation order; the index
// bucket finds them by ARN and by name.
const (
	bucketFleets      = "robomaker.fleets"       // key → fleetRec
	bucketRobots      = "robomaker.robots"       // key → robotRec
	bucketApps        = "robomaker.apps"         // key → appRec
	bucketVersions    = "robomaker.versions"     // appKey/%010d → versionRec
	bucketJobs        = "robomaker.jobs"         // key → jobRec
	bucketFleetRobots = "robomaker.fleet-robots" // fleetKey/robotKey → ""
	bucketIndex       = "robomaker.index"        // arn/<ARN>, robot/<name>, app/<name>, job/<id> → kind:key
	bucketTags        = "robomaker.tags"         // ARN → map[string]string
	bucketTokens      = "robomaker.tokens"       // idempotency tokens
	bucketMeta        = "robomaker.meta"         // stamp → last ARN timestamp (ms)
	bucketSeq         = "robomaker.seq"          // NextSequence only
)

// Resource kinds in the index.
const (
	kindFleet = "fleet"
	kindRobot = "robot"
	kindApp   = "app"
	kindJob   = "job"
)

type fleetRec struct {
	Key       string    `json:"key"`
	Name      string    `json:"name"`
	ARN       string    `json:"arn"`
	CreatedAt time.Time `json:"createdAt"`
	// LastJob is the key of the fleet's most recent deployment job.
	LastJob string `json:"lastJob,omitempty"`
}

type robotRec struct {
	Key          string    `json:"key"`
	Name         string    `json:"name"`
	ARN          string    `json:"arn"`
	Architecture string    `json:"architecture"`
	GreengrassID string    `json:"greengrassGroupId"`
	Fleet        string    `json:"fleet,omitempty"` // fleet ARN; empty when in no fleet
	FleetKey     string    `json:"fleetKey,omitempty"`
	CreatedAt    time.Time `json:"createdAt"`
}

type appRec struct {
	Key         string        `json:"key"`
	Name        string        `json:"name"`
	ARN         string        `json:"arn"`
	Suite       softwareSuite `json:"suite"`
	Environment *environment  `json:"environment,omitempty"`
	Sources     []sourceRec   `json:"sources,omitempty"`
	RevisionID  string        `json:"revisionId"`
	UpdatedAt   time.Time     `json:"updatedAt"`
	// LastVersion is the number of the newest version ever created (versions are never renumbered).
	LastVersion int `json:"lastVersion"`
}

type versionRec struct {
	Version     string       `json:"version"`
	Sources     []sourceRec  `json:"sources,omitempty"`
	Environment *environment `json:"environment,omitempty"`
	ImageDigest string       `json:"imageDigest,omitempty"`
	RevisionID  string       `json:"revisionId"`
	UpdatedAt   time.Time    `json:"updatedAt"`
}

type sourceRec struct {
	Bucket       string `json:"bucket"`
	Key          string `json:"key"`
	Architecture string `json:"architecture"`
	ETag         string `json:"etag,omitempty"`
}

type jobTarget struct {
	Name string `json:"name"`
	ARN  string `json:"arn"`
}

type jobRec struct {
	Key       string                        `json:"key"`
	ID        string                        `json:"id"`
	ARN       string                        `json:"arn"`
	Fleet     string                        `json:"fleet"`
	FleetName string                        `json:"fleetName"`
	CreatedAt time.Time                     `json:"createdAt"`
	Config    deploymentConfig              `json:"config"`
	Apps      []deploymentApplicationConfig `json:"apps"`
	Targets   []jobTarget                   `json:"targets"`
	// Payload is the job document's RoboMaker payload; Sync copies it into a new job.
	Payload wire.RoboMakerDocument `json:"payload"`
}

// expired reports whether the job is past its lifetime at now.
func (j *jobRec) expired(now time.Time) bool { return !now.Before(j.CreatedAt.Add(JobLifetime)) }

// getJSON reads and decodes one record; found is false when the key is absent.
func getJSON(tx store.Tx, bucket, key string, v any) (found bool, err error) {
	data, err := tx.Get(bucket, key)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read %s/%s: %w", bucket, key, err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return false, fmt.Errorf("decode %s/%s: %w", bucket, key, err)
	}
	return true, nil
}

func putJSON(tx store.Tx, bucket, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s/%s: %w", bucket, key, err)
	}
	if err := tx.Put(bucket, key, data); err != nil {
		return fmt.Errorf("write %s/%s: %w", bucket, key, err)
	}
	return nil
}

// lookup resolves an index entry to (kind, key).
func lookup(tx store.Tx, entry string) (kind, key string, found bool, err error) {
	data, err := tx.Get(bucketIndex, entry)
	if errors.Is(err, store.ErrNotFound) {
		return "", "", false, nil
	}
	if err != nil {
		return "", "", false, fmt.Errorf("read index: %w", err)
	}
	kind, key, _ = strings.Cut(string(data), ":")
	return kind, key, true, nil
}

func index(tx store.Tx, entry, kind, key string) error {
	if err := tx.Put(bucketIndex, entry, []byte(kind+":"+key)); err != nil {
		return fmt.Errorf("write index: %w", err)
	}
	return nil
}

func unindex(tx store.Tx, entries ...string) error {
	for _, e := range entries {
		if err := tx.Delete(bucketIndex, e); err != nil {
			return fmt.Errorf("delete index: %w", err)
		}
	}
	return nil
}

// nextKey returns a fresh record key and its sequence number. Keys are unique across restarts because the
// sequence is in the store.
func nextKey(tx store.Tx) (string, uint64, error) {
	n, err := tx.NextSequence(bucketSeq)
	if err != nil {
		return "", 0, fmt.Errorf("next sequence: %w", err)
	}
	return fmt.Sprintf("%016d", n), n, nil
}

// stamp returns the epoch-millisecond suffix of a new ARN: the clock's time, moved past the last stamp issued so
// two resources of one name never share an ARN, even on a fake clock that stands still.
func stamp(tx store.Tx, now time.Time) (int64, error) {
	ms := now.UnixMilli()
	data, err := tx.Get(bucketMeta, "stamp")
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return 0, fmt.Errorf("read stamp: %w", err)
	}
	if err == nil {
		last, perr := strconv.ParseInt(string(data), 10, 64)
		if perr == nil && last >= ms {
			ms = last + 1
		}
	}
	if err := tx.Put(bucketMeta, "stamp", []byte(strconv.FormatInt(ms, 10))); err != nil {
		return 0, fmt.Errorf("write stamp: %w", err)
	}
	return ms, nil
}

// newJobID returns an id for a new deployment job, in RoboMaker's form ("deployment-xl8qssl6pbcn": twelve
// random base-36 digits), that no job and no engine deployment has. Ids are random, as AWS's are, so two
// services never hand out the same one; the check guards against a source that repeats itself (a seeded source
// passed again to a service on the same data).
func (s *Service) newJobID() (string, error) {
	for range 16 {
		id := "deployment-" + s.ids.Base36(12)
		var taken bool
		if err := s.store.View(func(tx store.Tx) error {
			var err error
			_, _, taken, err = lookup(tx, "job/"+id)
			return err
		}); err != nil {
			return "", err
		}
		if _, err := s.engine.Deployment(id); err == nil {
			taken = true
		}
		if !taken {
			return id, nil
		}
	}
	return "", errors.New("the id source keeps repeating ids already in use")
}

func (s *Service) arn(resource string) string {
	return awsapi.ARN{Partition: "aws", Service: "robomaker", Region: s.region, Account: s.account,
		Resource: resource}.String()
}

// newResource allocates what a new fleet, robot or application is named by: a record key, and the ARN
// <resource>/<name>/<stamp>.
func (s *Service) newResource(tx store.Tx, now time.Time, resource, name string) (key, arn string, err error) {
	key, _, err = nextKey(tx)
	if err != nil {
		return "", "", err
	}
	ms, err := stamp(tx, now)
	if err != nil {
		return "", "", err
	}
	return key, s.arn(fmt.Sprintf("%s/%s/%d", resource, name, ms)), nil
}

// insert writes a new resource of kind: its record rec at key in bucket, the index entry of its ARN and the other
// index entries given ("robot/<name>", …), and its tags. remove undoes it.
func insert(tx store.Tx, bucket, kind, key, arn string, rec any, tags map[string]string, entries ...string) error {
	if err := putJSON(tx, bucket, key, rec); err != nil {
		return err
	}
	for _, e := range append([]string{"arn/" + arn}, entries...) {
		if err := index(tx, e, kind, key); err != nil {
			return err
		}
	}
	return putTags(tx, arn, tags)
}

// remove deletes what insert wrote: the record at key in bucket, the resource's tags, and its index entries, that
// of its ARN and the others given.
func remove(tx store.Tx, bucket, key, arn string, entries ...string) error {
	if err := tx.Delete(bucket, key); err != nil {
		return err
	}
	if err := putTags(tx, arn, nil); err != nil {
		return err
	}
	return unindex(tx, append([]string{"arn/" + arn}, entries...)...)
}

// findByARN resolves an ARN of this account and region to its kind and record key.
func (s *Service) findByARN(tx store.Tx, arn string) (kind, key string, found bool, err error) {
	a, perr := awsapi.ParseARN(arn)
	if perr != nil || a.Service != "robomaker" || a.Region != s.region || a.Account != s.account {
		return "", "", false, nil
	}
	return lookup(tx, "arn/"+arn)
}

// loadByARN finds the record of a resource of kind, kept in bucket, by its ARN: nil when the ARN names no
// resource of this account and region, or one of another kind.
func loadByARN[T any](s *Service, tx store.Tx, arn, kind, bucket string) (*T, error) {
	k, key, ok, err := s.findByARN(tx, arn)
	if err != nil || !ok || k != kind {
		return nil, err
	}
	return loadKey[T](tx, bucket, key)
}

// loadKey reads the record at key in bucket; nil when there is none.
func loadKey[T any](tx store.Tx, bucket, key string) (*T, error) {
	var rec T
	if ok, err := getJSON(tx, bucket, key, &rec); err != nil || !ok {
		return nil, err
	}
	return &rec, nil
}

// loadFleet finds a fleet by ARN.
func (s *Service) loadFleet(tx store.Tx, arn string) (*fleetRec, error) {
	return loadByARN[fleetRec](s, tx, arn, kindFleet, bucketFleets)
}

// loadRobot finds a robot by ARN.
func (s *Service) loadRobot(tx store.Tx, arn string) (*robotRec, error) {
	return loadByARN[robotRec](s, tx, arn, kindRobot, bucketRobots)
}

// loadApp finds a robot application by ARN.
func (s *Service) loadApp(tx store.Tx, arn string) (*appRec, error) {
	return loadByARN[appRec](s, tx, arn, kindApp, bucketApps)
}

// loadJob finds a deployment job by ARN, expired or not.
func (s *Service) loadJob(tx store.Tx, arn string) (*jobRec, error) {
	return loadByARN[jobRec](s, tx, arn, kindJob, bucketJobs)
}

func loadJobKey(tx store.Tx, key string) (*jobRec, error) {
	return loadKey[jobRec](tx, bucketJobs, key)
}

func versionKey(appKey string, n int) string { return fmt.Sprintf("%s/%010d", appKey, n) }

// loadVersion finds a numbered version of an application.
func loadVersion(tx store.Tx, app *appRec, version string) (*versionRec, error) {
	n, err := strconv.Atoi(version)
	if err != nil || n < 1 || n > app.LastVersion {
		return nil, nil
	}
	return loadKey[versionRec](tx, bucketVersions, versionKey(app.Key, n))
}

// tags returns the tags of a resource ARN (an empty map when it has none).
func getTags(tx store.Tx, arn string) (map[string]string, error) {
	tags := map[string]string{}
	if _, err := getJSON(tx, bucketTags, arn, &tags); err != nil {
		return nil, err
	}
	return tags, nil
}

func putTags(tx store.Tx, arn string, tags map[string]string) error {
	if len(tags) == 0 {
		return tx.Delete(bucketTags, arn)
	}
	return putJSON(tx, bucketTags, arn, tags)
}

// fleetRobots returns the robots registered with a fleet, in registration-key order.
func fleetRobots(tx store.Tx, fleetKey string) ([]robotRec, error) {
	var keys []string
	if err := tx.ForEach(bucketFleetRobots, fleetKey+"/", func(k string, _ []byte) error {
		keys = append(keys, strings.TrimPrefix(k, fleetKey+"/"))
		return nil
	}); err != nil {
		return nil, fmt.Errorf("list fleet robots: %w", err)
	}
	robots := make([]robotRec, 0, len(keys))
	for _, k := range keys {
		var r robotRec
		ok, err := getJSON(tx, bucketRobots, k, &r)
		if err != nil {
			return nil, err
		}
		if ok {
			robots = append(robots, r)
		}
	}
	return robots, nil
}

// each decodes every record of a bucket in key order.
func each[T any](tx store.Tx, bucket string, fn func(*T) error) error {
	return tx.ForEach(bucket, "", func(k string, v []byte) error {
		var rec T
		if err := json.Unmarshal(v, &rec); err != nil {
			return fmt.Errorf("decode %s/%s: %w", bucket, k, err)
		}
		return fn(&rec)
	})
}
