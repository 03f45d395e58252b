// Package appconfig is the device agent's AppConfig kind: a device that takes its configuration from
// AppConfigData. It opens a configuration session, polls GetLatestConfiguration at the interval the service
// requires, and when a new configuration comes it writes it atomically on the device, runs the device's apply
// hook (a real script) on it, and keeps it only when the hook succeeds — otherwise the last good configuration
// stays in place. After every poll it puts its health in CloudWatch (wire.HealthMetric: 1 while the last
// configuration given failed to apply), so a bad configuration makes devices unhealthy, a monitor's alarm
// fires, and the deployment rolls back; the rolled-back configuration then comes on the next poll.
//
// AppConfig has no jobs: the kind is not an agent.Kind of the IoT Jobs loop but a loop of its own, over the
// same clock and transport a host gives agents. Its states, in order, each reported as an Event:
//
//	Session ──▶ Polling ──new configuration──▶ Applying ──hook exits 0──▶ Applied ──▶ Polling
//	                                             └──hook fails──▶ ApplyFailed (last good kept) ──▶ Polling
//
// On the device, in Dir: config (the configuration in force), config.version (its version label and the
// deployment it came from), config.next (a configuration being applied, removed whatever the outcome).
package appconfig

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	agentcore "github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/clock"
	wire "github.com/fleetlab/fleetlab/sim/deviceapi/wire/appconfig"
)

// States the device reports.
const (
	StateSession     = "Session"
	StatePolling     = "Polling"
	StateApplying    = "Applying"
	StateApplied     = "Applied"
	StateApplyFailed = "ApplyFailed"
)

// Files on the device.
const (
	FileConfig  = "config"
	FileVersion = "config.version"
	FileNext    = "config.next"
)

// HookTimeout bounds the apply hook.
const HookTimeout = 30 * time.Second

// Options configure a Device. Zero fields take the defaults listed.
type Options struct {
	// Thing is the device's name: its client identifier on AppConfigData. Required.
	Thing string
	// Endpoint is the service's base URL; Transport carries the calls (default http.DefaultTransport).
	Endpoint  string
	Transport http.RoundTripper
	// Clock is the device's time (default: the real clock).
	Clock clock.Clock
	// Application, Environment and Profile name what the device takes (ids or names). Required.
	Application, Environment, Profile string
	// PollInterval is the RequiredMinimumPollIntervalInSeconds asked for (default and floor 15s).
	PollInterval time.Duration
	// Dir is the device's directory (required): the configuration files and the apply hook live there.
	Dir string
	// Hook is the apply hook, a script run with sh and the path of the configuration to apply as its one
	// argument (and in CONFIG_FILE), its version in CONFIG_VERSION; "" applies without a hook.
	Hook string
	// MetricDelay holds each health datapoint this long before it is put (a slow metrics pipeline); its
	// timestamp stays the time it was measured.
	MetricDelay time.Duration
	// OnEvent is told of every state entered.
	OnEvent func(Event)
	// Credentials, when set, sign every call (`fleetlab serve --auth sigv4`, with the devices' keys): AppConfigData
	// under its signing name (SigningName), PutMetricData under CloudWatch's (MetricsSigningName).
	Credentials *agentcore.Credentials
}

// The signing names of the device's calls: AppConfigData's, and CloudWatch's.
const (
	SigningName        = "appconfig"
	MetricsSigningName = "monitoring"
)

// Event is something the device did.
type Event struct {
	Time    time.Time
	Thing   string
	State   string
	Version string // the version label (or deployment) involved
	Err     error
}

// Device is one AppConfig device.
type Device struct {
	opts   Options
	client *http.Client
	clock  clock.Clock

	mu      sync.Mutex
	healthy bool
	paused  bool
	applied string
	token   string
	wake    *clock.Signal
}

// New returns a device over opts.
func New(opts Options) (*Device, error) {
	if opts.Thing == "" || opts.Dir == "" || opts.Application == "" || opts.Environment == "" || opts.Profile == "" {
		return nil, errors.New("appconfig agent: thing, dir, application, environment and profile are required")
	}
	if opts.PollInterval < 15*time.Second {
		opts.PollInterval = 15 * time.Second
	}
	if opts.Transport == nil {
		opts.Transport = http.DefaultTransport
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("appconfig agent: %w", err)
	}
	d := &Device{opts: opts, client: &http.Client{Transport: opts.Transport}, clock: clock.Or(opts.Clock),
		healthy: true}
	d.wake = clock.NewSignal(d.clock)
	if data, err := os.ReadFile(filepath.Join(opts.Dir, FileVersion)); err == nil {
		d.applied = string(data)
	}
	return d, nil
}

// Pause stops the device polling (and putting metrics) until Resume: a device that stops answering.
func (d *Device) Pause() {
	d.mu.Lock()
	d.paused = true
	d.mu.Unlock()
}

// Resume lets a paused device poll again.
func (d *Device) Resume() {
	d.mu.Lock()
	d.paused = false
	d.mu.Unlock()
	d.wake.Notify()
}

// SetHook replaces the apply hook (a fault: a hook that exits non-zero).
func (d *Device) SetHook(path string) {
	d.mu.Lock()
	d.opts.Hook = path
	d.mu.Unlock()
}

// Applied returns the version (label, or the deployment it came from) of the configuration in force, "" none.
func (d *Device) Applied() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.applied
}

// Healthy reports whether the last configuration given was applied.
func (d *Device) Healthy() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.healthy
}

func (d *Device) event(state, version string, err error) {
	if d.opts.OnEvent != nil {
		d.opts.OnEvent(Event{Time: d.clock.Now(), Thing: d.opts.Thing, State: state, Version: version, Err: err})
	}
}

// Run polls until ctx ends.
func (d *Device) Run(ctx context.Context) error {
	interval := d.opts.PollInterval
	for ctx.Err() == nil {
		d.mu.Lock()
		paused := d.paused
		d.mu.Unlock()
		if paused {
			if _, err := clock.Wait(ctx, d.clock, clock.Forever, d.wake); err != nil {
				return nil
			}
			continue
		}
		next, err := d.poll(ctx)
		if err != nil {
			d.event(StatePolling, "", err)
			d.mu.Lock()
			d.token = "" // start a new session
			d.mu.Unlock()
		} else if next > 0 {
			interval = next
		}
		if _, err := clock.Wait(ctx, d.clock, interval, d.wake); err != nil {
			return nil
		}
	}
	return nil
}

// poll makes one GetLatestConfiguration (opening a session first when there is none), applies what it brings,
// and puts the device's health; it returns the interval the service asks for.
func (d *Device) poll(ctx context.Context) (time.Duration, error) {
	d.mu.Lock()
	tok := d.token
	d.mu.Unlock()
	if tok == "" {
		d.event(StateSession, "", nil)
		var err error
		if tok, err = d.startSession(ctx); err != nil {
			return 0, err
		}
	}
	d.event(StatePolling, "", nil)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet,
		d.opts.Endpoint+"/configuration?configuration_token="+url.QueryEscape(tok), nil)
	if err != nil {
		return 0, err
	}
	if err := d.sign(req, nil, SigningName); err != nil {
		return 0, err
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return 0, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	resp.Body.Close()
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GetLatestConfiguration: %s: %s", resp.Status, bytes.TrimSpace(body))
	}
	d.mu.Lock()
	d.token = resp.Header.Get("Next-Poll-Configuration-Token")
	d.mu.Unlock()
	next := time.Duration(0)
	if s, err := strconv.Atoi(resp.Header.Get("Next-Poll-Interval-In-Seconds")); err == nil {
		next = time.Duration(s) * time.Second
	}
	if len(body) > 0 {
		version := resp.Header.Get("Version-Label")
		if version == "" {
			version = "digest:" + digest(body)
		}
		d.apply(ctx, body, version)
	}
	d.putHealth(ctx)
	return next, nil
}

func digest(b []byte) string {
	var h uint32 = 2166136261
	for _, c := range b {
		h = (h ^ uint32(c)) * 16777619
	}
	return strconv.FormatUint(uint64(h), 16)
}

func (d *Device) startSession(ctx context.Context) (string, error) {
	body := fmt.Sprintf(`{"ApplicationIdentifier":%q,"EnvironmentIdentifier":%q,"ConfigurationProfileIdentifier":%q,`+
		`"RequiredMinimumPollIntervalInSeconds":%d}`, d.opts.Application, d.opts.Environment, d.opts.Profile,
		int(d.opts.PollInterval/time.Second))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.opts.Endpoint+"/configurationsessions",
		bytes.NewReader([]byte(body)))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(wire.ClientIDHeader, d.opts.Thing)
	if err := d.sign(req, []byte(body), SigningName); err != nil {
		return "", err
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("StartConfigurationSession: %s: %s", resp.Status, bytes.TrimSpace(data))
	}
	var out struct {
		InitialConfigurationToken string
	}
	if err := json.Unmarshal(data, &out); err != nil || out.InitialConfigurationToken == "" {
		return "", fmt.Errorf("StartConfigurationSession: no token in %s", data)
	}
	return out.InitialConfigurationToken, nil
}

// apply writes the configuration to config.next, runs the hook on it and, when it succeeds, renames it over
// config: the configuration in force is always a whole one, the new or the last good.
//
// A configuration the device already holds (a new session after a restart or a lost session gives the whole
// configuration again) is not applied again. A device stopped while its hook runs neither takes nor refuses the
// configuration: the hook was cut short, so the last good one stays and the next start is given it again.
func (d *Device) apply(ctx context.Context, content []byte, version string) {
	if d.Applied() == version {
		if held, err := os.ReadFile(filepath.Join(d.opts.Dir, FileConfig)); err == nil && bytes.Equal(held, content) {
			d.mu.Lock()
			d.healthy = true
			d.mu.Unlock()
			return
		}
	}
	d.event(StateApplying, version, nil)
	next := filepath.Join(d.opts.Dir, FileNext)
	err := writeAtomic(next, content)
	if err == nil {
		err = d.runHook(ctx, next, version)
	}
	if err != nil && ctx.Err() != nil {
		os.Remove(next)
		return
	}
	if err == nil {
		if err = os.Rename(next, filepath.Join(d.opts.Dir, FileConfig)); err == nil {
			err = writeAtomic(filepath.Join(d.opts.Dir, FileVersion), []byte(version))
		}
	}
	os.Remove(next)
	d.mu.Lock()
	d.healthy = err == nil
	if err == nil {
		d.applied = version
	}
	d.mu.Unlock()
	if err != nil {
		d.event(StateApplyFailed, version, err)
		return
	}
	d.event(StateApplied, version, nil)
}

func (d *Device) runHook(ctx context.Context, path, version string) error {
	d.mu.Lock()
	hook := d.opts.Hook
	d.mu.Unlock()
	if hook == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, HookTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", hook, path)
	cmd.Dir = d.opts.Dir
	cmd.Env = append(os.Environ(), "CONFIG_FILE="+path, "CONFIG_VERSION="+version)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("apply hook %s: %w: %s", filepath.Base(hook), err, bytes.TrimSpace(out))
	}
	return nil
}

func (d *Device) putHealth(ctx context.Context) {
	v := 0.0
	if !d.Healthy() {
		v = 1
	}
	at := d.clock.Now()
	send := func() {
		body, headers := wire.PutMetricData(wire.HealthNamespace, wire.HealthMetric,
			map[string]string{wire.HealthDimension: d.opts.Application}, v, at)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.opts.Endpoint+wire.PutMetricDataPath,
			bytes.NewReader(body))
		if err != nil {
			return
		}
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		if err := d.sign(req, body, MetricsSigningName); err != nil {
			d.event(StatePolling, "", fmt.Errorf("put health: %w", err))
			return
		}
		resp, err := d.client.Do(req)
		if err == nil && resp.StatusCode != http.StatusOK {
			data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<12))
			resp.Body.Close()
			d.event(StatePolling, "", fmt.Errorf("put health: %s (%d bytes of error)", resp.Status, len(data)))
			return
		}
		if err != nil {
			d.event(StatePolling, "", fmt.Errorf("put health: %w", err))
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if d.opts.MetricDelay > 0 {
		clock.AfterFunc(d.clock, d.opts.MetricDelay, send)
		return
	}
	send()
}

// sign signs req, whose body is body, under signing name service when the device has credentials.
func (d *Device) sign(req *http.Request, body []byte, service string) error {
	if d.opts.Credentials == nil {
		return nil
	}
	return d.opts.Credentials.Sign(req, body, service)
}

// writeAtomic writes data to path through a temporary file, synced and renamed over it.
func writeAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}
