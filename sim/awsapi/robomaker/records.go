package robomaker

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/fleetlab/fleetlab/sim/awsapi"
	rmwire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/robomaker"
	"github.com/fleetlab/fleetlab/sim/store"
)

// Store layout of the dialect's own record kinds. Resources are keyed by a zero-padded sequence number, so
// iteration is creation order; the shared records (awsapi.Records, buckets "robomaker.index", ".tags", ".tokens",
// ".meta", ".seq") find them by ARN and by name ("robot/<name>", "app/<name>", "job/<id>"), and keep their tags.
const (
	bucketFleets      = "robomaker.fleets"       // key → fleetRec
	bucketRobots      = "robomaker.robots"       // key → robotRec
	bucketApps        = "robomaker.apps"         // key → appRec
	bucketVersions    = "robomaker.versions"     // appKey/%010d → versionRec
	bucketJobs        = "robomaker.jobs"         // key → jobRec
	bucketFleetRobots = "robomaker.fleet-robots" // fleetKey/robotKey → ""
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
	// Robots is how many robots are registered with the fleet, kept so the quota check of RegisterRobot does not
	// count the fleet's members on every call; nil in a record written before it was kept, which counts them once.
	Robots *int `json:"robots,omitempty"`
}

// members returns how many robots are registered with f, counting them (once) in a record that does not keep it.
func (f *fleetRec) members(tx store.Tx) (int, error) {
	if f.Robots != nil {
		return *f.Robots, nil
	}
	n := 0
	if err := tx.ForEach(bucketFleetRobots, f.Key+"/", func(string, []byte) error { n++; return nil }); err != nil {
		return 0, err
	}
	f.Robots = &n // counted once: addMembers goes on from here, whatever the update writes after
	return n, nil
}

// addMembers records that delta robots joined (or, negative, left) f, in the same update.
func (f *fleetRec) addMembers(tx store.Tx, delta int) error {
	n, err := f.members(tx)
	if err != nil {
		return err
	}
	n = max(n+delta, 0)
	f.Robots = &n
	return awsapi.PutJSON(tx, bucketFleets, f.Key, f)
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
	Payload rmwire.Document `json:"payload"`
}

// expired reports whether the job is past its lifetime at now.
func (j *jobRec) expired(now time.Time) bool { return !now.Before(j.CreatedAt.Add(JobLifetime)) }

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
			_, _, taken, err = s.rec.Lookup(tx, "job/"+id)
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

// loadFleet finds a fleet by ARN.
func (s *Service) loadFleet(tx store.Tx, arn string) (*fleetRec, error) {
	return awsapi.LoadByARN[fleetRec](s.rec, tx, arn, kindFleet, bucketFleets)
}

// loadRobot finds a robot by ARN.
func (s *Service) loadRobot(tx store.Tx, arn string) (*robotRec, error) {
	return awsapi.LoadByARN[robotRec](s.rec, tx, arn, kindRobot, bucketRobots)
}

// loadApp finds a robot application by ARN.
func (s *Service) loadApp(tx store.Tx, arn string) (*appRec, error) {
	return awsapi.LoadByARN[appRec](s.rec, tx, arn, kindApp, bucketApps)
}

// loadJob finds a deployment job by ARN, expired or not.
func (s *Service) loadJob(tx store.Tx, arn string) (*jobRec, error) {
	return awsapi.LoadByARN[jobRec](s.rec, tx, arn, kindJob, bucketJobs)
}

func loadJobKey(tx store.Tx, key string) (*jobRec, error) {
	return awsapi.LoadKey[jobRec](tx, bucketJobs, key)
}

func versionKey(appKey string, n int) string { return fmt.Sprintf("%s/%010d", appKey, n) }

// loadVersion finds a numbered version of an application.
func loadVersion(tx store.Tx, app *appRec, version string) (*versionRec, error) {
	n, err := strconv.Atoi(version)
	if err != nil || n < 1 || n > app.LastVersion {
		return nil, nil
	}
	return awsapi.LoadKey[versionRec](tx, bucketVersions, versionKey(app.Key, n))
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
		ok, err := awsapi.GetJSON(tx, bucketRobots, k, &r)
		if err != nil {
			return nil, err
		}
		if ok {
			robots = append(robots, r)
		}
	}
	return robots, nil
}
