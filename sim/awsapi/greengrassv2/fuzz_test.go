package greengrassv2

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fleetlab/fleetlab/sim/awsapi"
	"github.com/fleetlab/fleetlab/sim/store"
)

// FuzzCreateComponentVersion sends any recipe and any body to the handler: the answer is 201 or a modeled 4xx
// with its code in the header and the body, never a server error; a 201 is a version the dialect describes.
func FuzzCreateComponentVersion(f *testing.F) {
	f.Add(recipe("com.example.F", "1.0.0"), `{"tags": {"a": "b"}, "clientToken": "t-1"}`)
	f.Add([]byte("RecipeFormatVersion: '2020-01-25'\nComponentName: y\nComponentVersion: 0.0.1\n"), `{}`)
	f.Add([]byte(`{"a":`), `{"inlineRecipe": 7}`)
	f.Fuzz(func(t *testing.T, recipeData []byte, extra string) {
		st := store.NewMemory()
		defer st.Close()
		svc, err := New(Options{Store: st})
		if err != nil {
			t.Fatal(err)
		}
		h := awsapi.NewHandler(awsapi.Options{})
		if err := svc.Register(h); err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		if json.Unmarshal([]byte(extra), &body) != nil || body == nil {
			body = map[string]any{}
		}
		if _, set := body["inlineRecipe"]; !set {
			body["inlineRecipe"] = recipeData // encodes as base64
		}
		data, _ := json.Marshal(body)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/greengrass/v2/createComponentVersion",
			strings.NewReader(string(data))))
		switch {
		case rec.Code == http.StatusCreated:
			var out struct{ Arn string }
			if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.Arn == "" {
				t.Fatalf("201 without an arn: %s", rec.Body)
			}
			get := httptest.NewRecorder()
			h.ServeHTTP(get, httptest.NewRequest(http.MethodGet, "/greengrass/v2/components/"+out.Arn+"/metadata", nil))
			if get.Code != http.StatusOK {
				t.Fatalf("describe of a created version: %d %s", get.Code, get.Body)
			}
		case rec.Code >= 500:
			t.Fatalf("server error %d: %s", rec.Code, rec.Body)
		default:
			code := rec.Header().Get("X-Amzn-ErrorType")
			if code == "" || !strings.Contains(rec.Body.String(), `"__type":"`+code+`"`) {
				t.Fatalf("error %d without its code: %v %s", rec.Code, rec.Header(), rec.Body)
			}
		}
	})
}
