package robomaker

import (
	"github.com/fleetlab/fleetlab/sim/awsapi"
	"github.com/fleetlab/fleetlab/sim/engine"
	"github.com/fleetlab/fleetlab/sim/store"
)

// A robot's name is its thing name on the device API, so robot names are unique.

// KnowsThing reports whether a robot is named name: whether name is a thing the dialect knows.
func (s *Service) KnowsThing(name string) bool {
	found := false
	_ = s.store.View(func(tx store.Tx) error {
		var err error
		_, _, found, err = s.rec.Lookup(tx, "robot/"+name)
		return err
	})
	return found
}

func (s *Service) createRobot(r *awsapi.Request) (any, error) {
	var in struct {
		Name              string            `json:"name"`
		Architecture      string            `json:"architecture"`
		GreengrassGroupID string            `json:"greengrassGroupId"`
		Tags              map[string]string `json:"tags"`
	}
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	now := s.clock.Now()
	var rb robotRec
	err := s.store.Batch(func(tx store.Tx) error {
		if _, _, taken, err := s.rec.Lookup(tx, "robot/"+in.Name); err != nil || taken {
			if err == nil {
				err = alreadyExists("Robot %s already exists.", in.Name)
			}
			return err
		}
		key, arn, err := s.rec.NewResource(tx, now, "robot", in.Name)
		if err != nil {
			return err
		}
		rb = robotRec{Key: key, Name: in.Name, ARN: arn, Architecture: in.Architecture,
			GreengrassID: in.GreengrassGroupID, CreatedAt: now}
		return s.rec.Insert(tx, bucketRobots, kindRobot, key, arn, &rb, in.Tags, "robot/"+rb.Name)
	})
	if err != nil {
		return nil, err
	}
	return struct {
		ARN               string            `json:"arn"`
		Name              string            `json:"name"`
		CreatedAt         epoch             `json:"createdAt"`
		GreengrassGroupID string            `json:"greengrassGroupId"`
		Architecture      string            `json:"architecture"`
		Tags              map[string]string `json:"tags,omitempty"`
	}{rb.ARN, rb.Name, epoch(rb.CreatedAt), rb.GreengrassID, rb.Architecture, in.Tags}, nil
}

func (s *Service) deleteRobot(r *awsapi.Request) (any, error) {
	var in struct {
		Robot string `json:"robot"`
	}
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	err := s.store.Batch(func(tx store.Tx) error {
		rb, err := s.loadRobot(tx, in.Robot)
		if err != nil {
			return err
		}
		if rb == nil {
			return invalidParameter("Robot %s does not exist.", in.Robot)
		}
		if rb.FleetKey != "" {
			f, err := awsapi.LoadKey[fleetRec](tx, bucketFleets, rb.FleetKey)
			if err != nil {
				return err
			}
			if f != nil {
				if err := f.addMembers(tx, -1); err != nil {
					return err
				}
			}
			if err := tx.Delete(bucketFleetRobots, rb.FleetKey+"/"+rb.Key); err != nil {
				return err
			}
		}
		return s.rec.Remove(tx, bucketRobots, rb.Key, rb.ARN, "robot/"+rb.Name)
	})
	if err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

func (s *Service) describeRobot(r *awsapi.Request) (any, error) {
	var in struct {
		Robot string `json:"robot"`
	}
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	type output struct {
		ARN                string            `json:"arn"`
		Name               string            `json:"name"`
		FleetARN           string            `json:"fleetArn,omitempty"`
		Status             string            `json:"status"`
		GreengrassGroupID  string            `json:"greengrassGroupId,omitempty"`
		CreatedAt          epoch             `json:"createdAt,omitzero"`
		Architecture       string            `json:"architecture,omitempty"`
		LastDeploymentJob  string            `json:"lastDeploymentJob,omitempty"`
		LastDeploymentTime epoch             `json:"lastDeploymentTime,omitzero"`
		Tags               map[string]string `json:"tags,omitempty"`
	}
	var (
		rb   *robotRec
		tags map[string]string
	)
	err := s.store.View(func(tx store.Tx) error {
		var err error
		if rb, err = s.loadRobot(tx, in.Robot); err != nil {
			return err
		}
		if rb == nil {
			return notFound("Robot %s does not exist.", in.Robot)
		}
		tags, err = s.rec.Tags(tx, rb.ARN)
		return err
	})
	if err != nil {
		return nil, err
	}
	sums, err := s.robotSummaries([]robotRec{*rb})
	if err != nil {
		return nil, err
	}
	sum := sums[0]
	return output{ARN: sum.ARN, Name: sum.Name, FleetARN: sum.FleetARN, Status: sum.Status,
		GreengrassGroupID: sum.GreenGrassGroupID, CreatedAt: sum.CreatedAt, Architecture: sum.Architecture,
		LastDeploymentJob: sum.LastDeploymentJob, LastDeploymentTime: sum.LastDeploymentTime, Tags: tags}, nil
}

// robotSummaries render robots with their status: Available outside a fleet, Registered in a fleet none of
// whose jobs it has been part of, and otherwise the status of its latest execution in a job of its fleet. The
// engine is asked first and the store read after, never the engine from inside a store transaction: the
// engine's control operations commit with the engine locked.
func (s *Service) robotSummaries(rbs []robotRec) ([]robot, error) {
	latest := make([]*engine.Execution, len(rbs))
	for i, rb := range rbs {
		if rb.Fleet == "" {
			continue
		}
		if x, ok := s.engine.LatestForDevice(rb.Name); ok {
			latest[i] = &x
		}
	}
	jobs := make([]*jobRec, len(rbs))
	err := s.store.View(func(tx store.Tx) error {
		for i, x := range latest {
			if x == nil {
				continue
			}
			kind, key, found, err := s.rec.Lookup(tx, "job/"+x.Deployment)
			if err != nil {
				return err
			}
			if !found || kind != kindJob {
				continue
			}
			if jobs[i], err = loadJobKey(tx, key); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]robot, len(rbs))
	for i, rb := range rbs {
		out[i] = robot{ARN: rb.ARN, Name: rb.Name, FleetARN: rb.Fleet, Status: robotAvailable,
			GreenGrassGroupID: rb.GreengrassID, CreatedAt: epoch(rb.CreatedAt), Architecture: rb.Architecture}
		if rb.Fleet == "" {
			continue
		}
		out[i].Status = robotRegistered
		j := jobs[i]
		if j == nil || j.Fleet != rb.Fleet {
			continue
		}
		out[i].Status = s.robotDeployment(*latest[i], rb.ARN, j.ARN).Status
		out[i].LastDeploymentJob = j.ARN
		out[i].LastDeploymentTime = epoch(j.CreatedAt)
	}
	return out, nil
}

func (s *Service) listRobots(r *awsapi.Request) (any, error) {
	var in listInput
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	q, err := in.query("ListRobots", 200, "status", "fleetName")
	if err != nil {
		return nil, err
	}
	var rbs []robotRec
	err = s.store.View(func(tx store.Tx) error {
		fleetNames := map[string]string{}
		if err := awsapi.Each(tx, bucketFleets, func(f *fleetRec) error {
			fleetNames[f.ARN] = f.Name
			return nil
		}); err != nil {
			return err
		}
		return awsapi.Each(tx, bucketRobots, func(rb *robotRec) error {
			if q.match("fleetName", fleetNames[rb.Fleet]) {
				rbs = append(rbs, *rb)
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	sums, err := s.robotSummaries(rbs)
	if err != nil {
		return nil, err
	}
	var all []keyed[robot]
	for i, sum := range sums {
		if q.match("status", sum.Status) {
			all = append(all, keyed[robot]{stampKey(rbs[i].ARN), sum})
		}
	}
	page, next, err := pageOf(q, all)
	if err != nil {
		return nil, err
	}
	return struct {
		Robots    []robot `json:"robots"`
		NextToken string  `json:"nextToken,omitempty"`
	}{page, next}, nil
}

type membership struct {
	Fleet string `json:"fleet"`
	Robot string `json:"robot"`
}

func (s *Service) registerRobot(r *awsapi.Request) (any, error) {
	return s.changeMembership(r, func(tx store.Tx, f *fleetRec, rb *robotRec) error {
		switch rb.Fleet {
		case f.ARN:
			return nil
		case "":
		default:
			return invalidParameter("Robot %s is already registered with fleet %s.", rb.Name, rb.Fleet)
		}
		n, err := f.members(tx)
		if err != nil {
			return err
		}
		if n >= s.quotas.RobotsPerFleet {
			return limitExceeded("Fleet %s has the maximum of %d robots.", f.Name, s.quotas.RobotsPerFleet)
		}
		rb.Fleet, rb.FleetKey = f.ARN, f.Key
		if err := awsapi.PutJSON(tx, bucketRobots, rb.Key, rb); err != nil {
			return err
		}
		if err := f.addMembers(tx, 1); err != nil {
			return err
		}
		return tx.Put(bucketFleetRobots, f.Key+"/"+rb.Key, []byte{})
	})
}

func (s *Service) deregisterRobot(r *awsapi.Request) (any, error) {
	return s.changeMembership(r, func(tx store.Tx, f *fleetRec, rb *robotRec) error {
		if rb.Fleet != f.ARN {
			return invalidParameter("Robot %s is not registered with fleet %s.", rb.Name, f.Name)
		}
		rb.Fleet, rb.FleetKey = "", ""
		if err := awsapi.PutJSON(tx, bucketRobots, rb.Key, rb); err != nil {
			return err
		}
		if err := f.addMembers(tx, -1); err != nil {
			return err
		}
		return tx.Delete(bucketFleetRobots, f.Key+"/"+rb.Key)
	})
}

// changeMembership answers RegisterRobot and DeregisterRobot: change is given the fleet and the robot the request
// names, both existing, in one store update, and the answer is the request.
func (s *Service) changeMembership(r *awsapi.Request, change func(tx store.Tx, f *fleetRec, rb *robotRec) error) (any, error) {
	var in membership
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	err := s.store.Batch(func(tx store.Tx) error {
		f, err := s.loadFleet(tx, in.Fleet)
		if err != nil {
			return err
		}
		if f == nil {
			return notFound("Fleet %s does not exist.", in.Fleet)
		}
		rb, err := s.loadRobot(tx, in.Robot)
		if err != nil {
			return err
		}
		if rb == nil {
			return notFound("Robot %s does not exist.", in.Robot)
		}
		return change(tx, f, rb)
	})
	if err != nil {
		return nil, err
	}
	return in, nil
}
