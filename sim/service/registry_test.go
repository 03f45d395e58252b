package service

import (
	"errors"
	"testing"

	"github.com/fleetlab/fleetlab/sim/awsapi"
	"github.com/fleetlab/fleetlab/sim/engine"
	"github.com/fleetlab/fleetlab/sim/store"
)

// The dialect that is the thing registry (IoT, first in the list) is handed to the dialects built after it.
func TestDialectsAfterIoTGetTheRegistry(t *testing.T) {
	var got awsapi.Registry
	specs := append(dialectList(), awsapi.DialectSpec{Name: "probe", New: func(deps awsapi.DialectDeps, _ any) (
		awsapi.Dialect, error) {
		got = deps.Registry
		return nil, errors.New("probe built")
	}})
	st := store.NewMemory()
	defer st.Close()
	eng, err := engine.New(engine.Options{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	_, err = buildDialects(specs, nil, awsapi.DialectDeps{Store: st, Engine: eng})
	if err == nil || err.Error() != "probe built" {
		t.Fatalf("build: %v", err)
	}
	if got == nil {
		t.Fatal("the dialect after IoT got no registry")
	}
	if _, found, err := got.Thing("nobody"); found || err != nil {
		t.Fatalf("Thing(nobody) = %v %v", found, err)
	}
	if specs[0].Name != "iot" {
		t.Fatalf("the first dialect is %s, want iot (the registry the others are given)", specs[0].Name)
	}
}
