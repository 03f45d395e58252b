package artifacts_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"

	"github.com/fleetlab/fleetlab/sim/artifacts"
)

func Example() {
	dir, _ := os.MkdirTemp("", "artifacts-example")
	defer os.RemoveAll(dir)
	s, err := artifacts.Open(dir, artifacts.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	s.CreateBucket("robot-bundles")
	o, _ := s.Put("robot-bundles", "hello/x86_64/bundle.tar", strings.NewReader("hello, robot"))
	fmt.Println(o.Size, o.ETag) // the ETag a job document carries

	// Devices download through the read-only handler, which the device API mounts under /artifacts/.
	mux := http.NewServeMux()
	mux.Handle("/artifacts/", http.StripPrefix("/artifacts", s.DeviceHandler()))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/artifacts/robot-bundles/hello/x86_64/bundle.tar")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, resp.Header.Get("ETag"), string(body))
	// Output:
	// 12 "298d389992faa8f8f7b94db44fd3460b"
	// 200 "298d389992faa8f8f7b94db44fd3460b" hello, robot
}
