package greengrass

import (
	"strings"
	"testing"
	"testing/fstest"
)

func TestRecordCoreVersion(t *testing.T) {
	id, v, ok := CoreVersion("arn:aws:greengrass:us-east-1:1:/greengrass/definition/cores/c-1/versions/v-2")
	if !ok || id != "c-1" || v != "v-2" {
		t.Errorf("CoreVersion: %q %q %v", id, v, ok)
	}
	for _, bad := range []string{"arn:aws:greengrass:us-east-1:1:/greengrass/definition/cores/c-1", "x/versions/v", "arn:aws:greengrass:r:1:/greengrass/definition/cores//versions/v"} {
		if _, _, ok := CoreVersion(bad); ok {
			t.Errorf("CoreVersion(%q) ok", bad)
		}
	}
}

// TestRecordTwoGroupsOneCore: two groups whose core definitions name one thing are refused, naming the file.
func TestRecordTwoGroupsOneCore(t *testing.T) {
	core := `{"Definition":{"Cores":[{"ThingArn":"arn:aws:iot:r:1:thing/kiosk"}]}}`
	fs := fstest.MapFS{}
	for _, g := range []string{"g1", "g2"} {
		fs["groups/"+g+"/get-deployment-status.json"] = &fstest.MapFile{Data: []byte(`{"DeploymentStatus":"Success"}`)}
		fs["groups/"+g+"/list-deployments.json"] = &fstest.MapFile{Data: []byte(`{"Deployments":[{"GroupArn":"arn:aws:greengrass:r:1:/greengrass/groups/` + g + `/versions/v"}]}`)}
		fs["groups/"+g+"/get-core-definition-version.json"] = &fstest.MapFile{Data: []byte(core)}
	}
	_, ok, err := Driver{}.ReadRecord(fs)
	if !ok || err == nil || !strings.Contains(err.Error(), "groups/g2/get-core-definition-version.json: Definition.Cores[0].ThingArn: core kiosk is the core of groups/g1 too") {
		t.Fatalf("ok %v err %v", ok, err)
	}
}

// TestRecordSharedFailures: a failure every core shares is the deployment's; one on some cores only is named.
func TestRecordSharedFailures(t *testing.T) {
	group := func(fs fstest.MapFS, g, code string) {
		fs["groups/"+g+"/get-deployment-status.json"] = &fstest.MapFile{Data: []byte(`{"DeploymentStatus":"Failure","ErrorDetails":[{"DetailedErrorCode":"` + code + `"}]}`)}
		fs["groups/"+g+"/list-deployments.json"] = &fstest.MapFile{Data: []byte(`{"Deployments":[{"GroupArn":"arn:aws:greengrass:r:1:/greengrass/groups/` + g + `/versions/v"}]}`)}
	}
	all := fstest.MapFS{}
	group(all, "g1", "GG-RESOURCE-ARCHIVE")
	group(all, "g2", "GG-RESOURCE-ARCHIVE")
	rec, _, err := Driver{}.ReadRecord(all)
	if err != nil || rec.Job.Bundle != "corrupt" {
		t.Fatalf("bundle %q, err %v", rec.Job.Bundle, err)
	}
	some := fstest.MapFS{}
	group(some, "g1", "GG-RESOURCE-CHECKSUM")
	group(some, "g2", "GG-RESOURCE-DOWNLOAD")
	rec, _, err = Driver{}.ReadRecord(some)
	if err != nil || len(rec.Faults) != 0 || !strings.Contains(strings.Join(rec.Unmapped, "\n"), "GG-RESOURCE-CHECKSUM on some cores only") {
		t.Fatalf("faults %v, unmapped %v, err %v", rec.Faults, rec.Unmapped, err)
	}
}
