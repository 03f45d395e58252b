package robomaker

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/fleetlab/fleetlab/sim/awsapi"
	"github.com/fleetlab/fleetlab/sim/store"
)

func (s *Service) createFleet(r *awsapi.Request) (any, error) {
	var in struct {
		Name string            `json:"name"`
		Tags map[string]string `json:"tags"`
	}
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	now := s.clock.Now()
	var f fleetRec
	err := s.store.Batch(func(tx store.Tx) error {
		n := 0
		if err := tx.ForEach(bucketFleets, "", func(string, []byte) error { n++; return nil }); err != nil {
			return err
		}
		if n >= s.quotas.Fleets {
			return limitExceeded("The account has reached its limit of %d fleets.", s.quotas.Fleets)
		}
		key, arn, err := s.rec.NewResource(tx, now, "deployment-fleet", in.Name)
		if err != nil {
			return err
		}
		f = fleetRec{Key: key, Name: in.Name, ARN: arn, CreatedAt: now}
		return s.rec.Insert(tx, bucketFleets, kindFleet, key, arn, &f, in.Tags)
	})
	if err != nil {
		return nil, err
	}
	return struct {
		ARN       string            `json:"arn"`
		Name      string            `json:"name"`
		CreatedAt epoch             `json:"createdAt"`
		Tags      map[string]string `json:"tags,omitempty"`
	}{f.ARN, f.Name, epoch(f.CreatedAt), in.Tags}, nil
}

func (s *Service) deleteFleet(r *awsapi.Request) (any, error) {
	var in struct {
		Fleet string `json:"fleet"`
	}
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	s.jobs.Lock()
	defer s.jobs.Unlock()
	// Jobs start only under s.jobs, so a fleet found idle here stays idle until the write below is done; the
	// engine is asked outside the store transaction.
	if d, active := s.engine.Active(in.Fleet); active {
		return nil, invalidParameter("Fleet %s has a deployment job in progress (%s).", in.Fleet, d.ID)
	}
	err := s.store.Batch(func(tx store.Tx) error {
		f, err := s.loadFleet(tx, in.Fleet)
		if err != nil {
			return err
		}
		if f == nil {
			return invalidParameter("Fleet %s does not exist.", in.Fleet)
		}
		robots, err := fleetRobots(tx, f.Key)
		if err != nil {
			return err
		}
		for _, rb := range robots {
			rb.Fleet, rb.FleetKey = "", ""
			if err := awsapi.PutJSON(tx, bucketRobots, rb.Key, &rb); err != nil {
				return err
			}
			if err := tx.Delete(bucketFleetRobots, f.Key+"/"+rb.Key); err != nil {
				return err
			}
		}
		return s.rec.Remove(tx, bucketFleets, f.Key, f.ARN)
	})
	if err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

func (s *Service) describeFleet(r *awsapi.Request) (any, error) {
	var in struct {
		Fleet string `json:"fleet"`
	}
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	type output struct {
		fleet
		Robots []robot           `json:"robots"`
		Tags   map[string]string `json:"tags,omitempty"`
	}
	var (
		out    output
		f      *fleetRec
		robots []robotRec
	)
	err := s.store.View(func(tx store.Tx) error {
		var err error
		if f, err = s.loadFleet(tx, in.Fleet); err != nil {
			return err
		}
		if f == nil {
			return notFound("Fleet %s does not exist.", in.Fleet)
		}
		if robots, err = fleetRobots(tx, f.Key); err != nil {
			return err
		}
		out.Tags, err = s.rec.Tags(tx, f.ARN)
		return err
	})
	if err != nil {
		return nil, err
	}
	sums, err := s.fleetSummaries([]fleetRec{*f})
	if err != nil {
		return nil, err
	}
	out.fleet = sums[0]
	if out.Robots, err = s.robotSummaries(robots); err != nil {
		return nil, err
	}
	return out, nil
}

// fleetSummaries render fleets with their latest deployment job. The store is read first and the engine asked
// after, never from inside a store transaction: the engine's control operations commit with the engine locked.
func (s *Service) fleetSummaries(fs []fleetRec) ([]fleet, error) {
	last := make([]*jobRec, len(fs))
	err := s.store.View(func(tx store.Tx) error {
		for i := range fs {
			if fs[i].LastJob == "" {
				continue
			}
			var err error
			if last[i], err = loadJobKey(tx, fs[i].LastJob); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]fleet, len(fs))
	for i, f := range fs {
		out[i] = fleet{Name: f.Name, ARN: f.ARN, CreatedAt: epoch(f.CreatedAt)}
		j := last[i]
		if j == nil {
			continue
		}
		d, err := s.engine.Deployment(j.ID)
		if err != nil {
			continue // the job's deployment is being created or recovered; report none yet
		}
		out[i].LastDeploymentStatus, _, _ = s.jobStatus(d, s.executions(j.ID))
		out[i].LastDeploymentJob = j.ARN
		out[i].LastDeploymentTime = epoch(j.CreatedAt)
	}
	return out, nil
}

func (s *Service) listFleets(r *awsapi.Request) (any, error) {
	var in listInput
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	q, err := in.query("ListFleets", 200, "name")
	if err != nil {
		return nil, err
	}
	var fs []fleetRec
	err = s.store.View(func(tx store.Tx) error {
		return awsapi.Each(tx, bucketFleets, func(f *fleetRec) error {
			if q.match("name", f.Name) {
				fs = append(fs, *f)
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	sums, err := s.fleetSummaries(fs)
	if err != nil {
		return nil, err
	}
	all := make([]keyed[fleet], len(fs))
	for i, f := range fs {
		// Fleets are in creation order, and so are their ARNs' stamps; page by stamp.
		all[i] = keyed[fleet]{stampKey(f.ARN), sums[i]}
	}
	page, next, err := pageOf(q, all)
	if err != nil {
		return nil, err
	}
	return struct {
		FleetDetails []fleet `json:"fleetDetails"`
		NextToken    string  `json:"nextToken,omitempty"`
	}{page, next}, nil
}

// stampKey orders resources by the epoch-millisecond stamp that ends their ARN (unique per service), so a page
// token can resume after the last one returned.
func stampKey(arn string) string {
	ms, _ := strconv.ParseInt(arn[strings.LastIndexByte(arn, '/')+1:], 10, 64)
	return fmt.Sprintf("%020d", ms)
}

// listQuery is a List operation's request for a page, checked: how many items, which ones, and from where.
type listQuery struct {
	limit int
	match func(name, value string) bool
	scope string // the page token's scope: the operation with its filter
	token string
}

// query checks the paging and filter members of a List operation op, which returns up to limit items a page and
// filters by names.
func (in listInput) query(op string, limit int, names ...string) (listQuery, error) {
	limit, err := maxResults(in.MaxResults, limit)
	if err != nil {
		return listQuery{}, err
	}
	match, scope, err := filters(in.Filters, op, names...)
	if err != nil {
		return listQuery{}, err
	}
	return listQuery{limit: limit, match: match, scope: scope, token: in.NextToken}, nil
}

// keyed is an item of a listing with the key it is paged by; the keys of a listing ascend.
type keyed[T any] struct {
	key  string
	item T
}

// pageOf returns the page of all that q asks for (never nil) and the token of the next page, "" after the last. A
// token q's scope did not issue is InvalidParameterException.
func pageOf[T any](q listQuery, all []keyed[T]) ([]T, string, error) {
	page, next, err := awsapi.Page(all, func(it keyed[T]) string { return it.key }, q.scope, q.token, q.limit)
	if err != nil {
		return nil, "", invalidParameter("The nextToken is not valid.")
	}
	items := make([]T, len(page))
	for i, it := range page {
		items[i] = it.item
	}
	return items, next, nil
}

// maxResults checks a List operation's maxResults (1..max, default max).
func maxResults(v *int32, limit int) (int, error) {
	if v == nil {
		return limit, nil
	}
	if *v < 1 || int(*v) > limit {
		return 0, invalidParameter("1 validation error detected: Value '%d' at 'maxResults' failed to satisfy "+
			"constraint: Member must have value between 1 and %d", *v, limit)
	}
	return int(*v), nil
}

// filters checks a List operation's filters against the names it supports and returns a matcher and the page
// token scope (the operation with its filter). One filter, with up to three values that are matched exactly.
func filters(fs []filter, op string, names ...string) (match func(name, value string) bool, scope string, err error) {
	if len(fs) == 0 {
		return func(string, string) bool { return true }, op, nil
	}
	f := fs[0]
	if !slices.Contains(names, f.Name) {
		return nil, "", invalidParameter("Filter name %q is not supported; use %s.", f.Name,
			strings.Join(names, " or "))
	}
	values := slices.Clone(f.Values)
	slices.Sort(values)
	return func(name, value string) bool {
		return name != f.Name || slices.Contains(f.Values, value)
	}, op + "\x00" + f.Name + "\x00" + strings.Join(values, "\x00"), nil
}
