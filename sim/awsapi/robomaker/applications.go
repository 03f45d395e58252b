package robomaker

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/fleetlab/fleetlab/sim/awsapi"
	"github.com/fleetlab/fleetlab/sim/store"
)

// latest names the unversioned application.
const latest = "$LATEST"

func (s *Service) createRobotApplication(r *awsapi.Request) (any, error) {
	var in struct {
		Name               string            `json:"name"`
		Sources            []sourceConfig    `json:"sources"`
		RobotSoftwareSuite softwareSuite     `json:"robotSoftwareSuite"`
		Tags               map[string]string `json:"tags"`
		Environment        *environment      `json:"environment"`
	}
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	if in.RobotSoftwareSuite.Name == "" {
		return nil, invalidParameter("robotSoftwareSuite.name is required.")
	}
	if len(in.Sources) == 0 && (in.Environment == nil || in.Environment.URI == "") {
		return nil, invalidParameter("A robot application needs sources or an environment.")
	}
	seen := map[string]bool{}
	sources := make([]sourceRec, len(in.Sources))
	for i, src := range in.Sources {
		if src.S3Bucket == "" || src.S3Key == "" || src.Architecture == "" {
			return nil, invalidParameter("sources[%d] needs s3Bucket, s3Key and architecture.", i)
		}
		if seen[src.Architecture] {
			return nil, invalidParameter("sources has more than one %s bundle.", src.Architecture)
		}
		seen[src.Architecture] = true
		sources[i] = sourceRec{Bucket: src.S3Bucket, Key: src.S3Key, Architecture: src.Architecture}
	}
	if err := s.resolveETags(sources); err != nil {
		return nil, err
	}
	now := s.clock.Now()
	var app appRec
	err := s.store.Batch(func(tx store.Tx) error {
		if _, _, taken, err := s.rec.Lookup(tx, "app/"+in.Name); err != nil || taken {
			if err == nil {
				err = alreadyExists("Robot application %s already exists.", in.Name)
			}
			return err
		}
		key, arn, err := s.rec.NewResource(tx, now, "robot-application", in.Name)
		if err != nil {
			return err
		}
		app = appRec{Key: key, Name: in.Name, ARN: arn, Suite: in.RobotSoftwareSuite, Environment: in.Environment,
			Sources: sources, RevisionID: s.ids.UUID(), UpdatedAt: now}
		return s.rec.Insert(tx, bucketApps, kindApp, key, arn, &app, in.Tags, "app/"+in.Name)
	})
	if err != nil {
		return nil, err
	}
	out := appOutput(&app, nil)
	out.Tags = in.Tags
	return out, nil
}

// resolveETags fills in each source's current ETag from the artifact store; a missing object is
// InvalidParameterException naming it. Without an artifact store the sources are left as they are.
func (s *Service) resolveETags(sources []sourceRec) error {
	if s.objects == nil {
		return nil
	}
	for i := range sources {
		etag, err := s.objects.ETag(sources[i].Bucket, sources[i].Key)
		if err != nil {
			return invalidParameter("The object s3://%s/%s does not exist or cannot be read: %v",
				sources[i].Bucket, sources[i].Key, err)
		}
		sources[i].ETag = etag
	}
	return nil
}

func (s *Service) createRobotApplicationVersion(r *awsapi.Request) (any, error) {
	var in struct {
		Application       string   `json:"application"`
		CurrentRevisionID string   `json:"currentRevisionId"`
		S3Etags           []string `json:"s3Etags"`
		ImageDigest       string   `json:"imageDigest"`
	}
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	var (
		app *appRec
		err error
	)
	if err := s.store.View(func(tx store.Tx) error {
		app, err = s.loadApp(tx, in.Application)
		return err
	}); err != nil {
		return nil, err
	}
	if app == nil {
		return nil, invalidParameter("Robot application %s does not exist.", in.Application)
	}
	if in.CurrentRevisionID != "" && in.CurrentRevisionID != app.RevisionID {
		return nil, invalidParameter("The revision id %s is not the latest revision %s of %s.",
			in.CurrentRevisionID, app.RevisionID, app.Name)
	}
	sources := append([]sourceRec(nil), app.Sources...)
	if err := s.resolveETags(sources); err != nil {
		return nil, err
	}
	if len(in.S3Etags) > 0 {
		if len(in.S3Etags) != len(sources) {
			return nil, invalidParameter("s3Etags has %d entries for %d sources.", len(in.S3Etags), len(sources))
		}
		for i, want := range in.S3Etags {
			if unquote(want) != unquote(sources[i].ETag) {
				return nil, invalidParameter("The ETag of s3://%s/%s is %s, not %s.", sources[i].Bucket,
					sources[i].Key, sources[i].ETag, want)
			}
		}
	}
	now := s.clock.Now()
	var v versionRec
	err = s.store.Batch(func(tx store.Tx) error {
		// Read again inside the transaction: the record is what the version number is taken from, and a
		// concurrent request may have changed it.
		cur, err := s.loadApp(tx, in.Application)
		if err != nil {
			return err
		}
		if cur == nil {
			return invalidParameter("Robot application %s does not exist.", in.Application)
		}
		if in.CurrentRevisionID != "" && in.CurrentRevisionID != cur.RevisionID {
			return invalidParameter("The revision id %s is not the latest revision %s of %s.",
				in.CurrentRevisionID, cur.RevisionID, cur.Name)
		}
		app = cur
		app.LastVersion++
		v = versionRec{Version: strconv.Itoa(app.LastVersion), Sources: sources, Environment: app.Environment,
			ImageDigest: in.ImageDigest, RevisionID: s.ids.UUID(),
			UpdatedAt: now}
		if err := awsapi.PutJSON(tx, bucketVersions, versionKey(app.Key, app.LastVersion), &v); err != nil {
			return err
		}
		return awsapi.PutJSON(tx, bucketApps, app.Key, app)
	})
	if err != nil {
		return nil, err
	}
	return appOutput(app, &v), nil
}

func unquote(etag string) string { return strings.Trim(etag, `"`) }

// appOutput renders an application at $LATEST (v nil) or at a version.
func appOutput(app *appRec, v *versionRec) application {
	suite := app.Suite
	out := application{ARN: app.ARN, Name: app.Name, Version: latest, RobotSoftwareSuite: &suite,
		LastUpdatedAt: epoch(app.UpdatedAt), RevisionID: app.RevisionID, Environment: app.Environment}
	srcs := app.Sources
	if v != nil {
		out.Version, out.LastUpdatedAt, out.RevisionID = v.Version, epoch(v.UpdatedAt), v.RevisionID
		out.Environment, out.ImageDigest = v.Environment, v.ImageDigest
		srcs = v.Sources
	}
	out.Sources = make([]source, len(srcs))
	for i, src := range srcs {
		out.Sources[i] = source{S3Bucket: src.Bucket, S3Key: src.Key, ETag: src.ETag, Architecture: src.Architecture}
	}
	return out
}

func (s *Service) describeRobotApplication(r *awsapi.Request) (any, error) {
	var in struct {
		Application        string `json:"application"`
		ApplicationVersion string `json:"applicationVersion"`
	}
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	var out application
	err := s.store.View(func(tx store.Tx) error {
		app, err := s.loadApp(tx, in.Application)
		if err != nil {
			return err
		}
		if app == nil {
			return notFound("Robot application %s does not exist.", in.Application)
		}
		var v *versionRec
		if in.ApplicationVersion != "" && in.ApplicationVersion != latest {
			if v, err = loadVersion(tx, app, in.ApplicationVersion); err != nil {
				return err
			}
			if v == nil {
				return notFound("Version %s of robot application %s does not exist.", in.ApplicationVersion,
					app.Name)
			}
		}
		out = appOutput(app, v)
		out.Tags, err = s.rec.Tags(tx, app.ARN)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (s *Service) listRobotApplications(r *awsapi.Request) (any, error) {
	var in struct {
		listInput
		VersionQualifier string `json:"versionQualifier"`
	}
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	q, err := in.query("ListRobotApplications", 100, "name")
	if err != nil {
		return nil, err
	}
	q.scope += "\x00" + in.VersionQualifier
	var all []keyed[appSummary]
	err = s.store.View(func(tx store.Tx) error {
		return awsapi.Each(tx, bucketApps, func(app *appRec) error {
			if !q.match("name", app.Name) {
				return nil
			}
			suite := app.Suite
			sum := appSummary{Name: app.Name, ARN: app.ARN, Version: latest, LastUpdatedAt: epoch(app.UpdatedAt),
				RobotSoftwareSuite: &suite}
			all = append(all, keyed[appSummary]{app.Key + "/" + strings.Repeat("0", 10), sum})
			if in.VersionQualifier != "ALL" {
				return nil
			}
			return tx.ForEach(bucketVersions, app.Key+"/", func(k string, data []byte) error {
				var v versionRec
				if err := json.Unmarshal(data, &v); err != nil {
					return fmt.Errorf("decode %s/%s: %w", bucketVersions, k, err)
				}
				vs := sum
				vs.Version, vs.LastUpdatedAt = v.Version, epoch(v.UpdatedAt)
				all = append(all, keyed[appSummary]{k, vs})
				return nil
			})
		})
	})
	if err != nil {
		return nil, err
	}
	sums, next, err := pageOf(q, all)
	if err != nil {
		return nil, err
	}
	return struct {
		RobotApplicationSummaries []appSummary `json:"robotApplicationSummaries"`
		NextToken                 string       `json:"nextToken,omitempty"`
	}{sums, next}, nil
}

func (s *Service) deleteRobotApplication(r *awsapi.Request) (any, error) {
	var in struct {
		Application        string `json:"application"`
		ApplicationVersion string `json:"applicationVersion"`
	}
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	err := s.store.Batch(func(tx store.Tx) error {
		app, err := s.loadApp(tx, in.Application)
		if err != nil {
			return err
		}
		if app == nil {
			return invalidParameter("Robot application %s does not exist.", in.Application)
		}
		if in.ApplicationVersion != "" && in.ApplicationVersion != latest {
			v, err := loadVersion(tx, app, in.ApplicationVersion)
			if err != nil {
				return err
			}
			if v == nil {
				return invalidParameter("Version %s of robot application %s does not exist.",
					in.ApplicationVersion, app.Name)
			}
			n, _ := strconv.Atoi(v.Version)
			return tx.Delete(bucketVersions, versionKey(app.Key, n))
		}
		var keys []string
		if err := tx.ForEach(bucketVersions, app.Key+"/", func(k string, _ []byte) error {
			keys = append(keys, k)
			return nil
		}); err != nil {
			return err
		}
		for _, k := range keys {
			if err := tx.Delete(bucketVersions, k); err != nil {
				return err
			}
		}
		return s.rec.Remove(tx, bucketApps, app.Key, app.ARN, "app/"+app.Name)
	})
	if err != nil {
		return nil, err
	}
	return struct{}{}, nil
}
