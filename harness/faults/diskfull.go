package faults

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"

	"github.com/fleetlab/fleetlab/sim/agent"
	"github.com/fleetlab/fleetlab/sim/event"
)

// Where a DiskFull strikes.
const (
	DuringDownload = "download"
	DuringExtract  = "extract"
)

// DiskFull fills its targets' storage: writes fail with ENOSPC while the bundle is downloaded (the agent
// cannot stage it: EnvironmentSetupError) or unpacked (ExtractingBundleFailure). Recover frees the space.
//
// It strikes in the dialect's download step (Dialect.Download). Needs fleet.ExecutorHook (it wraps the agent's
// Downloader and Versions).
type DiskFull struct {
	// During is download (the default) or extract.
	During string `json:"during,omitempty"`
}

// Check implements Fault.
func (d *DiskFull) Check(sel Selector, dl Dialect) error {
	if d.During == "" {
		d.During = DuringDownload
	}
	if d.During != DuringDownload && d.During != DuringExtract {
		return fmt.Errorf("during %q: want %s or %s", d.During, DuringDownload, DuringExtract)
	}
	if dl.Download == "" {
		return fmt.Errorf("the %s dialect names no download step", dl.Name)
	}
	if sel.Step != "" && sel.Step != dl.Download {
		return fmt.Errorf("disk-full strikes in %s; leave the target's step out", dl.Download)
	}
	return nil
}

// Arm implements Fault.
func (d *DiskFull) Arm(a Arming) (Armed, error) {
	x := &diskFull{p: *d, a: a}
	remove, err := wrapAll(a, func(dev string, ex agent.Executors) agent.Executors {
		if d.During == DuringDownload {
			ex.Downloader = &fullDownloader{Downloader: ex.Downloader, dev: dev, x: x}
		} else {
			ex.Versions = &fullVersions{Versions: ex.Versions, dev: dev, x: x}
		}
		return ex
	})
	if err != nil {
		return nil, err
	}
	x.remove = remove
	return x, nil
}

type diskFull struct {
	p      DiskFull
	a      Arming
	active atomic.Bool
	remove func()
}

// full returns the error of a write to a full disk, and records the strike.
func (x *diskFull) full(dev, path string) error {
	x.a.emit(event.FaultInjected, dev, x.a.Dialect.Download, "no space left writing "+path)
	return &os.PathError{Op: "write", Path: path, Err: syscall.ENOSPC}
}

type fullDownloader struct {
	agent.Downloader
	dev string
	x   *diskFull
}

// Download implements agent.Downloader.
func (f *fullDownloader) Download(ctx context.Context, src agent.Fetcher, req agent.Request, p agent.Progress) (agent.Blob, error) {
	if f.x.active.Load() {
		return nil, f.x.full(f.dev, "downloads/"+req.Name+".part")
	}
	return f.Downloader.Download(ctx, src, req, p)
}

type fullVersions struct {
	agent.Versions
	dev string
	x   *diskFull
}

// Extract implements agent.Versions.
func (f *fullVersions) Extract(ctx context.Context, id string, bundle agent.Blob) (agent.Version, error) {
	if f.x.active.Load() {
		return agent.Version{}, f.x.full(f.dev, "versions/"+id)
	}
	return f.Versions.Extract(ctx, id, bundle)
}

func (x *diskFull) Inject(context.Context) error  { x.active.Store(true); return nil }
func (x *diskFull) Recover(context.Context) error { x.active.Store(false); return nil }
func (x *diskFull) Disarm()                       { x.remove() }
