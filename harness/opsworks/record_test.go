package opsworks

import (
	"encoding/base64"
	"strings"
	"testing"
	"testing/fstest"
)

// TestRecordHookFromLog: the failed hook is read from a data: LogUrl, past the hooks that exited 0; instances
// without a hostname are named after their ids, the whole id when two share the short name.
func TestRecordHookFromLog(t *testing.T) {
	log := "data:text/plain;base64," + base64.StdEncoding.EncodeToString([]byte(
		"running deploy hook before_migrate (app/deploy/before_migrate.sh)\ndeploy hook before_migrate exited 0\n"+
			"deploy hook after_restart exited 6\ncommand deploy failed, exit status 6\n"))
	rec, ok, err := Driver{}.ReadRecord(fstest.MapFS{
		"describe-deployments.json": {Data: []byte(`{"Deployments":[{"DeploymentId":"d","Status":"failed"}]}`)},
		"describe-commands.json": {Data: []byte(`{"Commands":[
			{"InstanceId":"abcdef01-1111","DeploymentId":"d","Status":"failed","ExitCode":6,"LogUrl":"` + log + `"},
			{"InstanceId":"abcdef01-2222","DeploymentId":"d","Status":"successful","ExitCode":0}]}`)},
	})
	if !ok || err != nil {
		t.Fatalf("ok %v err %v", ok, err)
	}
	if len(rec.Devices) != 2 || rec.Devices[0].Name != "instance-abcdef01-1111" || rec.Devices[1].Name != "instance-abcdef01-2222" {
		t.Fatalf("devices %+v", rec.Devices)
	}
	d := rec.Devices[0]
	if d.FailureCode != "exit-6" || len(d.Faults) != 1 || string(d.Faults[0].Params) != `{"script":"post-launch","code":6}` ||
		d.FailureReason != "command deploy failed, exit status 6" {
		t.Errorf("device %+v", d)
	}
	if got := strings.Join(rec.Unmapped, "\n"); strings.Contains(got, "not reproduced") {
		t.Errorf("unmapped %s", got)
	}
}
