package awsapi_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fleetlab/fleetlab/sim/awsapi"
	"github.com/fleetlab/fleetlab/sim/clock/clocktest"
	"github.com/fleetlab/fleetlab/sim/store"
)

func TestARN(t *testing.T) {
	a, err := awsapi.ParseARN("arn:aws:robomaker:us-west-2:111111111111:deployment-fleet/MyFleet/1539894765711")
	if err != nil {
		t.Fatal(err)
	}
	want := awsapi.ARN{Partition: "aws", Service: "robomaker", Region: "us-west-2", Account: "111111111111",
		Resource: "deployment-fleet/MyFleet/1539894765711"}
	if a != want || a.ResourceType() != "deployment-fleet" || a.ResourceID() != "MyFleet/1539894765711" {
		t.Fatalf("ParseARN = %+v (%s, %s)", a, a.ResourceType(), a.ResourceID())
	}
	if a.String() != "arn:aws:robomaker:us-west-2:111111111111:deployment-fleet/MyFleet/1539894765711" {
		t.Errorf("String = %s", a)
	}
	g, _ := awsapi.ParseARN("arn:aws:iot:us-east-1:1:thinggroup:a:b")
	if g.ResourceType() != "thinggroup" || g.ResourceID() != "a:b" {
		t.Errorf("colon resource = %s %s", g.ResourceType(), g.ResourceID())
	}
	for _, bad := range []string{"", "arn", "arn:aws:s3", "nope:aws:s3:::b", "arn::s3:::b", "arn:aws:s3:r:a:"} {
		if _, err := awsapi.ParseARN(bad); !errors.Is(err, awsapi.ErrNotARN) {
			t.Errorf("ParseARN(%q) = %v", bad, err)
		}
	}
}

func TestTimestamps(t *testing.T) {
	at := time.Date(2019, 2, 26, 21, 59, 29, 123_000_000, time.UTC)
	out, err := json.Marshal(struct {
		E awsapi.EpochSeconds `json:"e"`
		W awsapi.EpochSeconds `json:"w"`
		I awsapi.ISO8601      `json:"i"`
		D awsapi.DateTime     `json:"d"`
		Z awsapi.EpochSeconds `json:"z,omitzero"`
		N awsapi.ISO8601      `json:"n,omitzero"`
	}{awsapi.EpochSeconds(at), awsapi.EpochSeconds(at.Truncate(time.Second)), awsapi.ISO8601(at), awsapi.DateTime(at),
		awsapi.EpochSeconds{}, awsapi.ISO8601{}})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"e":1551218369.123,"w":1551218369,"i":"2019-02-26T21:59:29.123Z","d":"2019-02-26T21:59:29+00:00"}`
	if string(out) != want {
		t.Fatalf("encoded %s\nwant    %s", out, want)
	}
	for _, in := range []string{`1551218369.123`, `"2019-02-26T21:59:29.123Z"`, `1.551218369123E9`} {
		var e awsapi.EpochSeconds
		var i awsapi.ISO8601
		var d awsapi.DateTime
		for _, v := range []json.Unmarshaler{&e, &i, &d} {
			if err := v.UnmarshalJSON([]byte(in)); err != nil {
				t.Fatalf("decode %s: %v", in, err)
			}
		}
		if !e.Time().Equal(at) || !i.Time().Equal(at) || !d.Time().Equal(at) {
			t.Errorf("decode %s = %v %v %v", in, e.Time(), i.Time(), d.Time())
		}
	}
	var e awsapi.EpochSeconds
	if err := json.Unmarshal([]byte(`"tomorrow"`), &e); err == nil {
		t.Error("decoded garbage")
	}
	if err := json.Unmarshal([]byte(`null`), &e); err != nil || !e.IsZero() {
		t.Errorf("null = %v, %v", e.Time(), err)
	}
}

func TestPage(t *testing.T) {
	items := []string{"a", "b", "c", "d", "e"}
	key := func(s string) string { return s }
	var got []string
	token := ""
	for pages := 0; ; pages++ {
		page, next, err := awsapi.Page(items, key, "list", token, 2)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, strings.Join(page, ""))
		if next == "" {
			break
		}
		if strings.ContainsAny(next, "+/=") && pages > 10 {
			t.Fatal("runaway paging")
		}
		token = next
	}
	if strings.Join(got, "|") != "ab|cd|e" {
		t.Fatalf("pages = %v", got)
	}

	// A token resumes by key: an item removed or added before it does not shift the page.
	_, next, _ := awsapi.Page(items, key, "list", "", 2)
	page, _, err := awsapi.Page([]string{"a0", "c", "d", "e"}, key, "list", next, 2)
	if err != nil || strings.Join(page, "") != "cd" {
		t.Fatalf("resumed page = %v, %v", page, err)
	}
	// Tokens belong to one listing.
	if _, _, err := awsapi.Page(items, key, "other filter", next, 2); !errors.Is(err, awsapi.ErrBadToken) {
		t.Errorf("foreign token: %v", err)
	}
	for _, bad := range []string{"!!", "e30", "bm90IGpzb24"} {
		if _, _, err := awsapi.Page(items, key, "list", bad, 2); !errors.Is(err, awsapi.ErrBadToken) {
			t.Errorf("token %q: %v", bad, err)
		}
	}
	if page, next, _ := awsapi.Page(items, key, "list", "", 0); len(page) != 5 || next != "" {
		t.Errorf("no limit = %v %q", page, next)
	}
	if page, next, _ := awsapi.Page([]string{}, key, "list", "", 3); len(page) != 0 || next != "" {
		t.Errorf("empty = %v %q", page, next)
	}
}

func TestTokens(t *testing.T) {
	st := store.NewMemory()
	t.Cleanup(func() { st.Close() })
	fake := clocktest.New(time.Time{})
	tokens := awsapi.Tokens{Bucket: "test.tokens", TTL: time.Hour, Clock: fake}
	in := map[string]any{"fleet": "f", "clientRequestToken": "t1", "n": json.Number("1")}
	hash := awsapi.RequestHash(in, "clientRequestToken")
	other := map[string]any{"fleet": "f", "clientRequestToken": "t2", "n": json.Number("1")}
	if awsapi.RequestHash(other, "clientRequestToken") != hash {
		t.Fatal("the token changed the request hash")
	}
	changed := map[string]any{"fleet": "g", "clientRequestToken": "t1"}

	lookup := func(scope, token, h string) (string, bool, error) {
		var (
			id    string
			found bool
		)
		err := st.View(func(tx store.Tx) error {
			var err error
			id, found, err = tokens.Lookup(tx, scope, token, h)
			return err
		})
		return id, found, err
	}
	if _, found, err := lookup("Create", "t1", hash); found || err != nil {
		t.Fatalf("fresh token: %v %v", found, err)
	}
	if err := st.Update(func(tx store.Tx) error { return tokens.Record(tx, "Create", "t1", hash, "job-1") }); err != nil {
		t.Fatal(err)
	}
	if id, found, err := lookup("Create", "t1", hash); id != "job-1" || !found || err != nil {
		t.Fatalf("same request: %q %v %v", id, found, err)
	}
	if _, _, err := lookup("Create", "t1", awsapi.RequestHash(changed, "clientRequestToken")); !errors.Is(err, awsapi.ErrTokenMismatch) {
		t.Fatalf("different request: %v", err)
	}
	if _, found, _ := lookup("Sync", "t1", hash); found {
		t.Fatal("token leaked across scopes")
	}
	fake.Advance(time.Hour)
	if _, found, err := lookup("Create", "t1", awsapi.RequestHash(changed, "clientRequestToken")); found || err != nil {
		t.Fatalf("expired token: %v %v", found, err)
	}
	if err := st.Update(func(tx store.Tx) error { return tokens.Forget(tx, "Create", "t1") }); err != nil {
		t.Fatal(err)
	}
	forever := awsapi.Tokens{Bucket: "test.tokens", Clock: fake}
	if err := st.Update(func(tx store.Tx) error { return forever.Record(tx, "Create", "t2", hash, "job-2") }); err != nil {
		t.Fatal(err)
	}
	fake.Advance(1000 * time.Hour)
	err := st.View(func(tx store.Tx) error {
		id, found, err := forever.Lookup(tx, "Create", "t2", hash)
		if id != "job-2" || !found {
			return fmt.Errorf("token without TTL: %q %v", id, found)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
