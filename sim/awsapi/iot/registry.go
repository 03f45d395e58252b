package iot

import (
	"errors"

	"github.com/fleetlab/fleetlab/sim/awsapi"
	"github.com/fleetlab/fleetlab/sim/store"
)

var _ awsapi.Registry = (*Service)(nil)

// write runs fn in one store transaction, the registry's writes one at a time, and tells the watchers the
// membership changes fn reports once they are stored: watchers see changes in the order they were stored.
func (s *Service) write(fn func(tx store.Tx, changes *[]awsapi.MembershipChange) error) error {
	s.writes.Lock()
	defer s.writes.Unlock()
	var changes []awsapi.MembershipChange
	if err := s.store.Update(func(tx store.Tx) error {
		changes = changes[:0]
		return fn(tx, &changes)
	}); err != nil {
		return err
	}
	s.watchMu.Lock()
	watchers := make([]func(awsapi.MembershipChange), 0, len(s.watchers))
	for _, w := range s.watchers {
		watchers = append(watchers, w)
	}
	s.watchMu.Unlock()
	for _, c := range changes {
		for _, w := range watchers {
			w(c)
		}
	}
	return nil
}

// Thing returns the thing of that name.
func (s *Service) Thing(name string) (awsapi.RegistryThing, bool, error) {
	var t *thingRec
	err := s.store.View(func(tx store.Tx) error {
		var err error
		t, err = s.loadThing(tx, name)
		return err
	})
	if err != nil || t == nil {
		return awsapi.RegistryThing{}, false, err
	}
	return awsapi.RegistryThing{Name: t.Name, ARN: t.ARN}, true, nil
}

// GroupMembers returns the things of a thing group given by name or ARN.
func (s *Service) GroupMembers(group string, recursive bool) ([]string, bool, error) {
	var things []string
	found := false
	err := s.store.View(func(tx store.Tx) error {
		g, err := s.groupByNameOrARN(tx, group)
		if err != nil || g == nil {
			return err
		}
		found = true
		things, err = s.members(tx, g.Name, recursive)
		return err
	})
	return things, found, err
}

// WatchMembership calls fn with every membership change stored from now on.
func (s *Service) WatchMembership(fn func(awsapi.MembershipChange)) (stop func()) {
	s.watchMu.Lock()
	defer s.watchMu.Unlock()
	id := s.nextW
	s.nextW++
	s.watchers[id] = fn
	return func() {
		s.watchMu.Lock()
		defer s.watchMu.Unlock()
		delete(s.watchers, id)
	}
}

// ignoreNotFound turns a missing key into no error.
func ignoreNotFound(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}
