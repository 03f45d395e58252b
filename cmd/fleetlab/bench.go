package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fleetlab/fleetlab/harness"
	"github.com/fleetlab/fleetlab/harness/bench"
	"github.com/fleetlab/fleetlab/harness/dialect"
	"github.com/fleetlab/fleetlab/harness/faults"
	"github.com/fleetlab/fleetlab/sim/awsapi/robomaker"
)

// benchFlags are the flags of fleetlab bench, parsed.
type benchFlags struct {
	host, transport, agent, rig, dialect string
	register                             string
	devices                              []int
	job                                  dialect.JobSpec
	bundleSize                           int
	faults                               []faults.Spec
	reps                                 int
	seed                                 uint64
	scale                                float64
	loopback, wait                       time.Duration
	jsonFile, svg, plot                  string
	progress                             bool
	memLimit                             int64
	gcPercent                            int
}

func benchCommand() *command {
	c := &command{name: "bench", summary: "measure rollout throughput: one deployment to N devices per point, with setup, rollout, per-device times, CPU, memory and the device-API rate beside this machine's loopback limit",
		usage: "[--devices 100,1000,10000] [--host inproc|process|container | --rig RIG.yaml] [--transport memory|http|http-proxied] [--dialect NAME] [--concurrency P] [--threshold P] [--timeout D] [--bundle NAME] [--bundle-size SIZE] [--fault SPEC]... [--register sdk|bulk] [--reps N] [--memory-limit SIZE] [--gc-percent N] [--json FILE] [--svg PREFIX] | --plot FILE.json --svg PREFIX"}
	c.run = func(args []string, stdout, stderr io.Writer) error {
		f, err := parseBenchFlags(c, args, stderr)
		if err != nil {
			return err
		}
		if f.plot != "" {
			return replot(f, stdout)
		}
		return runBench(f, stdout, stderr)
	}
	return c
}

func parseBenchFlags(c *command, args []string, stderr io.Writer) (*benchFlags, error) {
	fs := newFlags(c, io.Discard)
	f := &benchFlags{}
	devices := fs.String("devices", "1000", "devices per point, or a sweep: a comma-separated list (100,1000,10000,100000)")
	fs.StringVar(&f.host, "host", "inproc", "where the devices run: inproc (goroutines in this process), process (one fleetlab-agent process each) or container (one container each)")
	fs.StringVar(&f.rig, "rig", "", "run the devices on the boards of this rig file instead of --host")
	fs.StringVar(&f.agent, "agent", "", "the fleetlab-agent program for --host process or container, or the emulated boards of --rig (default: beside fleetlab, on PATH, else built)")
	fs.StringVar(&f.transport, "transport", "memory", "for --host inproc, how devices reach the service: memory (in process, for very large fleets), http (loopback sockets, through the whole HTTP stack: straight to the service, or through a link proxy per device when a --fault shapes links) or http-proxied (always through a link proxy per device); the LINK column says which")
	fs.StringVar(&f.register, "register", bench.RegisterSDK, "how devices are registered: sdk (the dialect's SDK calls, as a user would) or bulk (one update inside the service's process, for very large fleets)")
	fs.StringVar(&f.dialect, "dialect", "", "the deployment API: "+strings.Join(driverNames(), ", ")+" (default the first)")
	conc := fs.Int("concurrency", 100, "percentage of devices deploying at once (RoboMaker concurrentDeploymentPercentage; for other dialects, when not given, the dialect's own pacing)")
	thr := fs.Int("threshold", 0, "failure threshold percentage that fails the job (default the dialect's)")
	timeout := fs.Duration("timeout", 0, "each device's deployment timeout, in policy time (default the dialect's)")
	fs.StringVar(&f.job.Bundle, "bundle", "hello", "the fixture bundle deployed ('fleetlab bundle --list')")
	size := fs.String("bundle-size", "0", "pad the bundle with an incompressible payload to about this size (bytes, or with KiB/MiB), downloaded whole by every device")
	var faultSpecs []string
	fs.Func("fault", "a fault injected before the rollout, repeatable: NAME[@COUNT|@PERCENT%][:PARAMS_JSON], e.g. script-exit@2%:{\"script\":\"pre-launch\",\"code\":3}, or a fault spec as JSON", func(s string) error {
		faultSpecs = append(faultSpecs, s)
		return nil
	})
	fs.IntVar(&f.reps, "reps", 1, "repetitions of each point; the table and JSON give the median of each figure")
	fs.Uint64Var(&f.seed, "seed", 1, "seed of the faults' targets and the agents' jitter")
	fs.Float64Var(&f.scale, "time-scale", 1, "policy time this many times faster than the wall clock")
	fs.DurationVar(&f.loopback, "loopback", time.Second, "how long to measure this machine's loopback HTTP limit after each point (0: not measured)")
	fs.DurationVar(&f.wait, "wait", 10*time.Minute, "wall-clock bound of one rollout")
	fs.StringVar(&f.jsonFile, "json", "", "write the points as a JSON array to FILE")
	fs.StringVar(&f.plot, "plot", "", "draw the --svg plots of the points of a JSON file written by --json, without measuring")
	fs.StringVar(&f.svg, "svg", "", "write PREFIX-completed.svg (devices completed over time) and PREFIX-sweep.svg (throughput by fleet size)")
	fs.BoolVar(&f.progress, "progress", false, "show a progress bar on stderr (default when stderr is a terminal)")
	fs.IntVar(&f.gcPercent, "gc-percent", 0, "the collector's GOGC for this process during each point (a higher one collects less often, with a larger heap; negative: off); 0: as the runtime has it (GOGC, default 100)")
	mem := fs.String("memory-limit", "0", "a soft memory limit for this process (bytes, or with MiB/GiB; the Go runtime's GOMEMLIMIT), so the collector works harder instead of the fleet growing past it; 0: none")
	if err := parse(c, fs, args); err != nil {
		return nil, err
	}
	if !given(fs, "progress") {
		f.progress = isTerminal(stderr)
	}
	usage := func(msg, hint string) (*benchFlags, error) { return nil, &usageError{msg: msg, hint: hint} }
	for _, d := range strings.Split(*devices, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(d))
		if err != nil || n < 1 {
			return usage(fmt.Sprintf("--devices: %q is not a number of devices", d), "--devices 100,1000,10000")
		}
		f.devices = append(f.devices, n)
	}
	if !given(fs, "concurrency") && f.dialect != "" && f.dialect != robomaker.Kind {
		*conc = 0 // the dialect's own pacing: a concurrency percentage is RoboMaker's
	}
	if (*conc < 1 && given(fs, "concurrency")) || *conc > 100 || *thr < 0 || *thr > 100 {
		return usage("--concurrency and --threshold are percentages", "--concurrency 1 to 100, --threshold 0 (the dialect's default) to 100")
	}
	f.job.Concurrency, f.job.FailureThreshold, f.job.Timeout = int32(*conc), int32(*thr), faults.Duration(*timeout)
	var err error
	if f.bundleSize, err = parseSize(*size); err != nil {
		return usage("--bundle-size: "+err.Error(), "--bundle-size 1MiB")
	}
	if f.memLimit, err = parseSizeInt64(*mem); err != nil {
		return usage("--memory-limit: "+err.Error(), "--memory-limit 3GiB")
	}
	for _, s := range faultSpecs {
		spec, err := parseFault(s)
		if err != nil {
			return usage("--fault "+s+": "+err.Error(), `--fault no-response@1% or --fault 'script-exit@5:{"script":"pre-launch","code":3}'`)
		}
		f.faults = append(f.faults, spec)
	}
	if f.plot != "" && f.svg == "" {
		return usage("--plot needs --svg PREFIX", "fleetlab bench --plot out.json --svg out")
	}
	if f.reps < 1 {
		return usage("--reps: want at least 1", "--reps 3")
	}
	if err := checkTimeScale(f.scale); err != nil {
		return nil, err
	}
	if f.register != bench.RegisterSDK && f.register != bench.RegisterBulk {
		return usage("--register: want sdk or bulk", "--register bulk")
	}
	if f.transport != "memory" && f.transport != "http" && f.transport != "http-proxied" {
		return usage("--transport: want memory, http or http-proxied", "--transport http")
	}
	if (f.host != "inproc" || f.rig != "") && given(fs, "transport") && f.transport != "http" {
		return usage("--transport "+f.transport+" is for --host inproc", "devices of other hosts reach the service over HTTP through link proxies of their own: leave --transport out")
	}
	if f.rig != "" && given(fs, "host") {
		return usage("--rig is a host of its own: give it without --host", "fleetlab bench --rig fixtures/rigs/emulated-4.yaml --devices 4")
	}
	if _, err := harness.DriverNamed(f.dialect); err != nil {
		return usage("--dialect: "+err.Error(), "fleetlab bench --dialect "+driverNames()[0])
	}
	return f, nil
}

func driverNames() []string {
	var names []string
	for _, d := range harness.Drivers() {
		names = append(names, d.Name())
	}
	return names
}

// parseFault reads NAME[@COUNT|@PERCENT%][:PARAMS_JSON], or a whole faults.Spec as JSON.
func parseFault(s string) (faults.Spec, error) {
	if strings.HasPrefix(strings.TrimSpace(s), "{") {
		var spec faults.Spec
		dec := json.NewDecoder(strings.NewReader(s))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&spec); err != nil {
			return faults.Spec{}, err
		}
		return spec, nil
	}
	head, params, hasParams := strings.Cut(s, ":")
	name, target, hasTarget := strings.Cut(head, "@")
	spec := faults.Spec{Fault: name}
	if name == "" {
		return spec, errors.New("no fault name")
	}
	if hasTarget {
		if p, ok := strings.CutSuffix(target, "%"); ok {
			v, err := strconv.ParseFloat(p, 64)
			if err != nil || v <= 0 || v > 100 {
				return spec, fmt.Errorf("%q is not a percentage of devices", target)
			}
			spec.Target.Percent = v
		} else {
			n, err := strconv.Atoi(target)
			if err != nil || n < 1 {
				return spec, fmt.Errorf("%q is not a count of devices", target)
			}
			spec.Target.Count = n
		}
	}
	if hasParams {
		if !json.Valid([]byte(params)) {
			return spec, fmt.Errorf("parameters %s are not JSON", params)
		}
		spec.Params = json.RawMessage(params)
	}
	return spec, nil
}

// parseSize reads a byte count with an optional KiB, MiB or GiB (or k, M, G) suffix.
func parseSize(s string) (int, error) {
	n, err := parseSizeInt64(s)
	if err != nil {
		return 0, err
	}
	if n > 1<<31 {
		return 0, fmt.Errorf("%s is more than 2 GiB", s)
	}
	return int(n), nil
}

func parseSizeInt64(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"k", 1 << 10}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = v, u.mult
			break
		}
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a size", s)
	}
	return int64(n * float64(mult)), nil
}

func runBench(f *benchFlags, stdout, stderr io.Writer) error {
	var backend harness.Backend
	done := func() {}
	var err error
	host := f.host
	if f.rig != "" {
		backend, done, err = rigBackend(f.rig, f.agent)
		host = "rig:" + f.rig
	} else {
		backend, done, err = hostBackend(f.host, f.agent)
	}
	if err != nil {
		return err
	}
	defer done()
	link := ""
	if backend == nil {
		tr := harness.InMemory
		switch f.transport {
		case "http":
			tr = harness.HTTP
		case "http-proxied":
			tr, link = harness.HTTP, bench.LinkProxied
		}
		backend = harness.InProc{Transport: tr}
	}
	driver, _ := harness.DriverNamed(f.dialect)
	tuning := ""
	if f.gcPercent != 0 {
		tuning += fmt.Sprintf(", GOGC %d", f.gcPercent)
	}
	if f.memLimit > 0 {
		tuning += fmt.Sprintf(", memory limit %d MiB", f.memLimit>>20)
	}
	fmt.Fprintf(stdout, "fleetlab bench: %s on %s, %s, %d CPUs (GOMAXPROCS %d), %s%s\n", driver.Name(), host,
		strings.Join(pointNames(f.devices), " "), runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(), tuning)
	var points []point
	ctx := context.Background()
	writeBenchHeader(stdout)
	var failure error
sweep:
	for _, n := range f.devices {
		var runs []bench.Result
		for rep := 1; rep <= f.reps; rep++ {
			cfg := bench.Config{Backend: backend, Host: host, Driver: driver, Devices: n, Job: f.job, MemoryLimit: f.memLimit,
				GCPercent:  f.gcPercent,
				BundleSize: f.bundleSize, Faults: f.faults, Register: f.register, Link: link, Seed: f.seed, TimeScale: f.scale,
				DialectOptions: map[string]any{robomaker.Kind: robomaker.Quotas{RobotsPerFleet: max(n, 1000)}},
				Wait:           f.wait, Loopback: f.loopback}
			if f.loopback == 0 {
				cfg.Loopback = -1
			}
			label := fmt.Sprintf("%d devices, rep %d/%d", n, rep, f.reps)
			if f.progress {
				cfg.Progress = progressBar(stderr, label)
			}
			res, err := bench.Run(ctx, cfg)
			if f.progress {
				fmt.Fprintln(stderr)
			}
			if err != nil {
				var ie *harness.InfraError
				if errors.As(err, &ie) {
					failure = &envError{fmt.Errorf("%s: %w", label, err)}
				} else {
					failure = fmt.Errorf("%s: %w", label, err)
				}
				break sweep
			}
			res.Rep = rep
			runs = append(runs, res)
		}
		p := medianPoint(runs)
		points = append(points, p)
		writeBenchRow(stdout, p)
	}
	writeBenchNote(stdout, points)
	// What was measured is kept even when a later point failed.
	if f.jsonFile != "" && len(points) > 0 {
		if err := writeBenchJSON(f.jsonFile, points); err != nil {
			return &envError{err}
		}
		fmt.Fprintf(stdout, "wrote %s\n", f.jsonFile)
	}
	if f.svg != "" && len(points) > 0 {
		files, err := writeBenchSVG(f.svg, points)
		if err != nil {
			return &envError{err}
		}
		fmt.Fprintf(stdout, "wrote %s\n", strings.Join(files, ", "))
	}
	if failure != nil {
		return failure
	}
	if len(f.faults) == 0 {
		for _, p := range points {
			if p.Succeeded != p.Devices {
				return &failedError{msg: fmt.Sprintf("%d devices: %d of them deployed without a fault injected (job %s)",
					p.Devices, p.Succeeded, p.JobStatus)}
			}
		}
	}
	return nil
}

func pointNames(ns []int) []string {
	var out []string
	for _, n := range ns {
		out = append(out, fmt.Sprintf("%d", n))
	}
	return []string{"devices " + strings.Join(out, ",")}
}

// point is one point of the sweep: the median of its repetitions' figures, and each repetition's rollout.
type point struct {
	bench.Result
	Reps      int       `json:"reps"`
	RolloutsS []float64 `json:"rollouts_s"`
	// DeviceAPIRPSReps, LoopbackLimitRPSReps and FractionsOfLoopback are each repetition's, in order, for the
	// ranges beside the medians.
	DeviceAPIRPSReps     []float64 `json:"device_api_rps_reps"`
	LoopbackLimitRPSReps []float64 `json:"loopback_limit_rps_reps"`
	FractionsOfLoopback  []float64 `json:"fraction_of_loopback_reps"`
}

// medianPoint takes the median of every figure over the repetitions (the upper one of an even count); the
// devices' completion times are the median repetition's by rollout.
func medianPoint(runs []bench.Result) point {
	p := point{Result: runs[0], Reps: len(runs)}
	for _, r := range runs {
		p.RolloutsS = append(p.RolloutsS, r.RolloutS)
		p.DeviceAPIRPSReps = append(p.DeviceAPIRPSReps, r.DeviceAPIRPS)
		p.LoopbackLimitRPSReps = append(p.LoopbackLimitRPSReps, r.LoopbackLimitRPS)
		p.FractionsOfLoopback = append(p.FractionsOfLoopback, r.FractionOfLoopback)
	}
	if len(runs) == 1 {
		return p
	}
	med := func(get func(bench.Result) float64) float64 {
		vs := make([]float64, len(runs))
		for i, r := range runs {
			vs[i] = get(r)
		}
		slices.Sort(vs)
		return vs[len(vs)/2]
	}
	byRollout := slices.Clone(runs)
	slices.SortFunc(byRollout, func(a, b bench.Result) int {
		switch {
		case a.RolloutS < b.RolloutS:
			return -1
		case a.RolloutS > b.RolloutS:
			return 1
		}
		return 0
	})
	m := byRollout[len(byRollout)/2]
	p.Result = m
	p.Rep = 0
	p.SetupS = med(func(r bench.Result) float64 { return r.SetupS })
	p.StartS = med(func(r bench.Result) float64 { return r.StartS })
	p.RegisterS = med(func(r bench.Result) float64 { return r.RegisterS })
	p.ReadyS = med(func(r bench.Result) float64 { return r.ReadyS })
	p.DevicesPerMin = med(func(r bench.Result) float64 { return r.DevicesPerMin })
	p.FirstSuccessS = med(func(r bench.Result) float64 { return r.FirstSuccessS })
	p.LastSuccessS = med(func(r bench.Result) float64 { return r.LastSuccessS })
	p.P50S = med(func(r bench.Result) float64 { return r.P50S })
	p.P95S = med(func(r bench.Result) float64 { return r.P95S })
	p.P99S = med(func(r bench.Result) float64 { return r.P99S })
	p.ServiceCPUSPer1000 = med(func(r bench.Result) float64 { return r.ServiceCPUSPer1000 })
	p.PeakRSSBytes = uint64(med(func(r bench.Result) float64 { return float64(r.PeakRSSBytes) }))
	p.IdleBytesPerDevice = med(func(r bench.Result) float64 { return r.IdleBytesPerDevice })
	p.DeviceAPIRPS = med(func(r bench.Result) float64 { return r.DeviceAPIRPS })
	p.LoopbackLimitRPS = med(func(r bench.Result) float64 { return r.LoopbackLimitRPS })
	p.FractionOfLoopback = med(func(r bench.Result) float64 { return r.FractionOfLoopback })
	p.RequestsPerDevice = med(func(r bench.Result) float64 { return r.RequestsPerDevice })
	p.CPUUsPerRequest = med(func(r bench.Result) float64 { return r.CPUUsPerRequest })
	p.LoopbackCPUUsPerRequest = med(func(r bench.Result) float64 { return r.LoopbackCPUUsPerRequest })
	return p
}

func writeBenchHeader(w io.Writer) {
	fmt.Fprintf(w, "\n%8s %-8s %-10s %-6s %-7s %4s %8s %9s %11s %8s %8s %8s %8s %8s %9s %8s %9s %10s %6s %8s\n",
		"DEVICES", "HOST", "DIALECT", "TRANS", "LINK", "REPS", "SETUP_S", "ROLLOUT_S", "DEVICES/MIN", "OK", "FAILED",
		"P50_S", "P95_S", "P99_S", "CPU_S/1K", "PEAK_MIB", "DEV_RPS", "LOOP_RPS", "FRAC", "REQ/DEV")
}

func writeBenchRow(w io.Writer, p point) {
	host := p.Host
	if len(host) > 8 {
		host = host[:8]
	}
	fmt.Fprintf(w, "%8d %-8s %-10s %-6s %-7s %4d %8.2f %9.2f %11.0f %8d %8d %8.3f %8.3f %8.3f %9.3f %8.0f %9.0f %10.0f %5.0f%% %8.1f\n",
		p.Devices, host, p.Dialect, p.Transport, p.Link, p.Reps, p.SetupS, p.RolloutS, p.DevicesPerMin, p.Succeeded,
		p.Failed+p.Other, p.P50S, p.P95S, p.P99S, p.ServiceCPUSPer1000, float64(p.PeakRSSBytes)/(1<<20),
		p.DeviceAPIRPS, p.LoopbackLimitRPS, p.FractionOfLoopback*100, p.RequestsPerDevice)
}

func writeBenchNote(w io.Writer, points []point) {
	fmt.Fprintf(w, "\nsetup is starting the fleet, registering it (%s) and waiting until every device is up (its notify channel connected and a poll answered); FRAC is the device-API rate as a share of the loopback limit measured after the point at the same client concurrency (LOOP_RPS, with as many clients as the devices had requests outstanding at their peak, at most 512, sharing as many connections as the devices' requests came over); LINK is what stood between each device and the service (direct: nothing; proxied: a link proxy of its own; adapter: the memory transport's); on the memory transport devices bypass HTTP and FRAC may pass 100%%.\n", registerNote(points))
}

func registerNote(points []point) string {
	if len(points) > 0 && points[0].Register == bench.RegisterBulk {
		return "in bulk, inside the service's process"
	}
	return "through the dialect's SDK calls"
}

// replot draws the plots of the points a --json file holds.
func replot(f *benchFlags, stdout io.Writer) error {
	b, err := os.ReadFile(f.plot)
	if err != nil {
		return &usageError{msg: "--plot: " + err.Error(), hint: "give a file written by fleetlab bench --json"}
	}
	var points []point
	if err := json.Unmarshal(b, &points); err != nil || len(points) == 0 {
		return &usageError{msg: fmt.Sprintf("--plot: %s holds no points of fleetlab bench (%v)", f.plot, err),
			hint: "give a file written by fleetlab bench --json"}
	}
	files, err := writeBenchSVG(f.svg, points)
	if err != nil {
		return &envError{err}
	}
	fmt.Fprintf(stdout, "wrote %s\n", strings.Join(files, ", "))
	return nil
}

func writeBenchJSON(file string, points []point) error {
	b, err := json.MarshalIndent(points, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(file, append(b, '\n'), 0o644)
}

// progressBar returns a bench.Progress callback drawing a one-line bar on w.
func progressBar(w io.Writer, label string) func(bench.Progress) {
	const width = 30
	return func(p bench.Progress) {
		filled := 0
		if p.Devices > 0 {
			filled = p.Done * width / p.Devices
		}
		bar := strings.Repeat("#", filled) + strings.Repeat(".", width-filled)
		if p.Phase == "setup" {
			fmt.Fprintf(w, "\r%s [%s] %d/%d up %.1fs ", label, bar, p.Done, p.Devices, p.Elapsed.Seconds())
			return
		}
		fmt.Fprintf(w, "\r%s [%s] %d/%d done, %d ok, %s %.1fs ", label, bar, p.Done, p.Devices, p.Succeeded,
			p.DeploymentStatus, p.Elapsed.Seconds())
	}
}
