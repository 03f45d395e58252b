package robomaker

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"

	"github.com/fleetlab/fleetlab/sim/awsapi"
	"github.com/fleetlab/fleetlab/sim/store"
)

// BulkRobot is one robot RegisterFleet makes: its name and RoboMaker architecture (X86_64, ARM64, ARMHF).
type BulkRobot struct {
	Name, Architecture string
}

// robotName is the model's pattern and length of a robot name.
var robotName = regexp.MustCompile(`^[a-zA-Z0-9_\-]{1,255}$`)

// RegisterFleet makes robots, in the order given, members of the fleet named fleetName, in one store update: what
// CreateRobot for each robot (with greengrassGroupID), CreateFleet (unless a fleet of that name exists, when the
// oldest is used) and RegisterRobot for each robot leave behind, without 2N+1 calls through the wire. It is for
// a harness in the service's own process registering a very large fleet; the wire API stays the contract.
//
// A robot that exists already is reused when its architecture matches and it is in no fleet or in this one, and
// is an error otherwise; quotas hold as the calls would hold them (fleets per region, robots per fleet). On an
// error nothing is written. It returns the fleet's ARN.
func (s *Service) RegisterFleet(fleetName, greengrassGroupID string, robots []BulkRobot) (string, error) {
	if !robotName.MatchString(fleetName) {
		return "", invalidParameter("Fleet name %q must satisfy [a-zA-Z0-9_\\-]{1,255}.", fleetName)
	}
	seen := make(map[string]bool, len(robots))
	for _, rb := range robots {
		switch {
		case !robotName.MatchString(rb.Name):
			return "", invalidParameter("Robot name %q must satisfy [a-zA-Z0-9_\\-]{1,255}.", rb.Name)
		case !slices.Contains([]string{"X86_64", "ARM64", "ARMHF"}, rb.Architecture):
			return "", invalidParameter("Robot %s: architecture %q must be one of X86_64, ARM64, ARMHF.", rb.Name, rb.Architecture)
		case seen[rb.Name]:
			return "", invalidParameter("Robot %s appears twice.", rb.Name)
		}
		seen[rb.Name] = true
	}
	now := s.clock.Now()
	var fleetARN string
	err := s.store.Update(func(tx store.Tx) error {
		f, err := s.oldestFleet(tx, fleetName)
		if err != nil {
			return err
		}
		if f == nil {
			n := 0
			if err := tx.ForEach(bucketFleets, "", func(string, []byte) error { n++; return nil }); err != nil {
				return err
			}
			if n >= s.quotas.Fleets {
				return limitExceeded("The account has reached its limit of %d fleets.", s.quotas.Fleets)
			}
			key, arn, err := s.rec.NewResource(tx, now, "deployment-fleet", fleetName)
			if err != nil {
				return err
			}
			f = &fleetRec{Key: key, Name: fleetName, ARN: arn, CreatedAt: now}
			if err := s.rec.Insert(tx, bucketFleets, kindFleet, key, arn, f, nil); err != nil {
				return err
			}
		}
		fleetARN = f.ARN
		members, err := f.members(tx)
		if err != nil {
			return err
		}
		joined := 0
		for _, want := range robots {
			var rb *robotRec
			_, key, found, err := s.rec.Lookup(tx, "robot/"+want.Name)
			if err != nil {
				return err
			}
			if found {
				if rb, err = awsapi.LoadKey[robotRec](tx, bucketRobots, key); err != nil {
					return err
				}
			}
			switch {
			case rb == nil:
				key, arn, err := s.rec.NewResource(tx, now, "robot", want.Name)
				if err != nil {
					return err
				}
				rb = &robotRec{Key: key, Name: want.Name, ARN: arn, Architecture: want.Architecture,
					GreengrassID: greengrassGroupID, CreatedAt: now}
				if err := s.rec.Insert(tx, bucketRobots, kindRobot, key, arn, rb, nil, "robot/"+rb.Name); err != nil {
					return err
				}
			case rb.Architecture != want.Architecture:
				return invalidParameter("Robot %s exists with architecture %s, not %s.", rb.Name, rb.Architecture, want.Architecture)
			case rb.Fleet == f.ARN:
				continue
			case rb.Fleet != "":
				return invalidParameter("Robot %s is already registered with fleet %s.", rb.Name, rb.Fleet)
			}
			if members+joined >= s.quotas.RobotsPerFleet {
				return limitExceeded("Fleet %s has the maximum of %d robots.", f.Name, s.quotas.RobotsPerFleet)
			}
			rb.Fleet, rb.FleetKey = f.ARN, f.Key
			if err := awsapi.PutJSON(tx, bucketRobots, rb.Key, rb); err != nil {
				return err
			}
			if err := tx.Put(bucketFleetRobots, f.Key+"/"+rb.Key, []byte{}); err != nil {
				return err
			}
			joined++
		}
		return f.addMembers(tx, joined)
	})
	if err != nil {
		return "", fmt.Errorf("register fleet %s: %w", fleetName, err)
	}
	return fleetARN, nil
}

// oldestFleet returns the oldest fleet named name (fleet keys grow with creation), or nil.
func (s *Service) oldestFleet(tx store.Tx, name string) (*fleetRec, error) {
	var found *fleetRec
	err := tx.ForEach(bucketFleets, "", func(_ string, v []byte) error {
		if found != nil {
			return nil
		}
		var f fleetRec
		if err := json.Unmarshal(v, &f); err != nil {
			return err
		}
		if f.Name == name {
			found = &f
		}
		return nil
	})
	return found, err
}
