package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleetlab/fleetlab/harness/faults"
)

func TestBenchUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--devices", "10,x"}, `--devices: "x" is not a number of devices`},
		{[]string{"--devices", "0"}, `--devices: "0"`},
		{[]string{"--concurrency", "0"}, "--concurrency and --threshold are percentages"},
		{[]string{"--threshold", "101"}, "--concurrency and --threshold are percentages"},
		{[]string{"--bundle-size", "lots"}, "--bundle-size:"},
		{[]string{"--fault", "script-exit@0"}, `"0" is not a count of devices`},
		{[]string{"--fault", "script-exit@200%"}, "is not a percentage"},
		{[]string{"--fault", "script-exit:{nope"}, "are not JSON"},
		{[]string{"--fault", `{"fault":"crash","bogus":1}`}, "unknown field"},
		{[]string{"--reps", "0"}, "--reps: want at least 1"},
		{[]string{"--time-scale", "0"}, "--time-scale"},
		{[]string{"--transport", "pigeon"}, "--transport: want memory, http or http-proxied"},
		{[]string{"--host", "process", "--transport", "http-proxied"}, "--transport http-proxied is for --host inproc"},
		{[]string{"--register", "fax"}, "--register: want sdk or bulk"},
		{[]string{"--host", "process", "--transport", "memory"}, "--transport memory is for --host inproc"},
		{[]string{"--rig", "r.yaml", "--host", "process"}, "--rig is a host of its own"},
		{[]string{"--dialect", "nope"}, `--dialect: dialect "nope"`},
		{[]string{"--host", "moon"}, `--host: host "moon"`},
		{[]string{"extra"}, "unexpected arguments: extra"},
		{[]string{"--plot", "x.json"}, "--plot needs --svg PREFIX"},
		{[]string{"--plot", "/nonexistent.json", "--svg", "x"}, "--plot:"},
	} {
		var out, errOut bytes.Buffer
		code := run(append([]string{"bench"}, tc.args...), &out, &errOut)
		if code != exitUsage || !strings.Contains(errOut.String(), tc.want) || !strings.Contains(errOut.String(), "hint:") {
			t.Errorf("fleetlab bench %v: exit %d, stderr %q; want exit 2 saying %q with a hint", tc.args, code, errOut.String(), tc.want)
		}
	}
}

func TestParseFault(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want faults.Spec
	}{
		{"no-response", faults.Spec{Fault: "no-response"}},
		{"no-response@3", faults.Spec{Fault: "no-response", Target: faults.Selector{Count: 3}}},
		{"crash@2.5%", faults.Spec{Fault: "crash", Target: faults.Selector{Percent: 2.5}}},
		{`script-exit@1%:{"script":"pre-launch","code":3}`, faults.Spec{Fault: "script-exit",
			Target: faults.Selector{Percent: 1}, Params: json.RawMessage(`{"script":"pre-launch","code":3}`)}},
		{`{"fault":"latency","target":{"count":2},"params":{"delay":"1s"}}`, faults.Spec{Fault: "latency",
			Target: faults.Selector{Count: 2}, Params: json.RawMessage(`{"delay":"1s"}`)}},
	} {
		got, err := parseFault(tc.in)
		if err != nil || got.Fault != tc.want.Fault || got.Target.Count != tc.want.Target.Count ||
			got.Target.Percent != tc.want.Target.Percent || string(got.Params) != string(tc.want.Params) {
			t.Errorf("parseFault(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "512": 512, "64KiB": 64 << 10, "1MiB": 1 << 20, "1.5M": 3 << 19,
		"2GiB": 2 << 30, "10k": 10 << 10, "7B": 7} {
		if got, err := parseSizeInt64(in); err != nil || got != want {
			t.Errorf("parseSizeInt64(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "MiB", "1TiB"} {
		if _, err := parseSizeInt64(in); err == nil {
			t.Errorf("parseSizeInt64(%q) accepted", in)
		}
	}
}

// TestBenchJSON runs a small sweep and checks the figures it writes: every field the JSON promises, one object
// per point, the repetitions' rollouts, every device deployed, and the plots.
func TestBenchJSON(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "bench.json")
	prefix := filepath.Join(dir, "plot")
	var out, errOut bytes.Buffer
	code := run([]string{"bench", "--devices", "3,8", "--reps", "2", "--concurrency", "50", "--bundle-size", "64KiB",
		"--loopback", "50ms", "--json", file, "--svg", prefix, "--progress"}, &out, &errOut)
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
	if !strings.Contains(errOut.String(), "[") || !strings.Contains(errOut.String(), "8/8 done") {
		t.Errorf("no progress bar on stderr: %q", errOut.String())
	}
	for _, want := range []string{"DEVICES", "ROLLOUT_S", "LOOP_RPS", "robomaker", "memory"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var points []map[string]any
	if err := json.Unmarshal(b, &points); err != nil {
		t.Fatal(err)
	}
	if len(points) != 2 {
		t.Fatalf("%d points, want 2", len(points))
	}
	for i, devices := range []float64{3, 8} {
		p := points[i]
		for _, k := range []string{"devices", "host", "dialect", "setup_s", "rollout_s", "devices_per_min",
			"first_success_s", "last_success_s", "p50_s", "p95_s", "p99_s", "service_cpu_s_per_1000",
			"peak_rss_bytes", "device_api_rps", "loopback_limit_rps", "requests_per_device", "link", "cpu_us_per_request",
			"loopback_cpu_us_per_request"} {
			if _, ok := p[k]; !ok {
				t.Errorf("point %d lacks %s", i, k)
			}
		}
		if p["devices"] != devices || p["succeeded"] != devices || p["host"] != "inproc" || p["dialect"] != "robomaker" ||
			p["link"] != "adapter" {
			t.Errorf("point %d: %v devices, %v succeeded on %v/%v, link %v", i, p["devices"], p["succeeded"], p["host"], p["dialect"], p["link"])
		}
		for _, k := range []string{"rollout_s", "devices_per_min", "p99_s", "loopback_limit_rps", "device_api_rps", "peak_rss_bytes"} {
			if v, _ := p[k].(float64); v <= 0 {
				t.Errorf("point %d: %s = %v, want a measured figure", i, k, p[k])
			}
		}
		if v, _ := p["bundle_bytes"].(float64); v < 64<<10 {
			t.Errorf("point %d: bundle of %v bytes, want 64 KiB", i, p["bundle_bytes"])
		}
		if runs, _ := p["rollouts_s"].([]any); len(runs) != 2 || p["reps"] != 2.0 {
			t.Errorf("point %d: reps %v, rollouts %v", i, p["reps"], p["rollouts_s"])
		}
		for _, k := range []string{"device_api_rps_reps", "loopback_limit_rps_reps", "fraction_of_loopback_reps"} {
			if reps, _ := p[k].([]any); len(reps) != 2 {
				t.Errorf("point %d: %s = %v, want one figure a repetition", i, k, p[k])
			}
		}
	}
	// The plots again, from the JSON alone.
	out.Reset()
	if code := run([]string{"bench", "--plot", file, "--svg", prefix + "-again"}, &out, &errOut); code != exitOK {
		t.Fatalf("--plot: exit %d: %s", code, errOut.String())
	}
	for _, name := range []string{prefix + "-completed.svg", prefix + "-sweep.svg", prefix + "-again-completed.svg", prefix + "-again-sweep.svg"} {
		svg, err := os.ReadFile(name)
		if err != nil || !bytes.HasPrefix(svg, []byte("<svg")) || !bytes.Contains(svg, []byte("<polyline")) {
			t.Errorf("%s: %v\n%.200s", name, err, svg)
		}
	}
}

// A fault mix shows in the table as failed devices, and a run with faults exits 0: the failures were asked for.
func TestBenchFaultMix(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run([]string{"bench", "--devices", "6", "--loopback", "0", "--fault",
		`script-exit@2:{"script":"post-launch","code":4}`}, &out, &errOut)
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errOut.String())
	}
	var row []string
	for _, line := range strings.Split(out.String(), "\n") {
		if f := strings.Fields(line); len(f) > 10 && f[0] == "6" {
			row = f
		}
	}
	if row == nil || row[9] != "4" || row[10] != "2" {
		t.Errorf("want 4 deployed and 2 failed:\n%s", out.String())
	}
}

// Over HTTP the table and the JSON say which link the devices had: direct by default, the link proxies with
// --transport http-proxied or when a fault shapes links.
func TestBenchHTTPLink(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--transport", "http"}, "direct"},
		{[]string{"--transport", "http-proxied"}, "proxied"},
		{[]string{"--transport", "http", "--fault", `latency@1:{"latency":"1ms"}`}, "proxied"},
	} {
		file := filepath.Join(t.TempDir(), "bench.json")
		var out, errOut bytes.Buffer
		args := append([]string{"bench", "--devices", "3", "--register", "bulk", "--loopback", "0", "--json", file}, tc.args...)
		if code := run(args, &out, &errOut); code != exitOK {
			t.Fatalf("%v: exit %d\n%s%s", tc.args, code, out.String(), errOut.String())
		}
		var row []string
		for _, line := range strings.Split(out.String(), "\n") {
			if f := strings.Fields(line); len(f) > 10 && f[0] == "3" {
				row = f
			}
		}
		if row == nil || row[3] != "http" || row[4] != tc.want || !strings.Contains(out.String(), "LINK") {
			t.Errorf("%v: want transport http, link %s in the table:\n%s", tc.args, tc.want, out.String())
		}
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var points []map[string]any
		if err := json.Unmarshal(b, &points); err != nil || len(points) != 1 || points[0]["link"] != tc.want {
			t.Errorf("%v: JSON %s (%v), want link %s", tc.args, b, err, tc.want)
		}
	}
}
