package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/fleetlab/fleetlab/sim/deviceapi/wire"
)

// DeviceState is what the agent keeps on the device across restarts: the committed application version, the
// one before it, and the execution in flight with the step it reached. It is saved before each step, so an
// agent killed at any point knows on restart what it was doing.
type DeviceState struct {
	// Current is the committed version: the one the device reports as in sync and runs at boot.
	Current *Installed `json:"current,omitempty"`
	// Previous is the version Current replaced; it stays on the device until the next commit.
	Previous *Installed `json:"previous,omitempty"`
	// InFlight is the execution being carried out, nil when idle.
	InFlight *InFlight `json:"inFlight,omitempty"`
}

// Installed is an application version on the device: the job that installed it (its version id) and what
// is needed to launch it again.
type Installed struct {
	JobID       string               `json:"jobId"`
	Job         string               `json:"job,omitempty"`
	Application string               `json:"application,omitempty"`
	Name        string               `json:"name,omitempty"`
	Version     string               `json:"version,omitempty"`
	Launch      wire.RoboMakerLaunch `json:"launch"`
}

// InFlight is an execution the agent has started and not finished.
type InFlight struct {
	JobID           string `json:"jobId"`
	ExecutionNumber int64  `json:"executionNumber,omitempty"`
	// Document is the raw job document, as the service sent it.
	Document string `json:"document"`
	// Step is the state reached: a RoboMaker step, or StateRollingBack, StateFailed, StateRejected.
	Step string `json:"step"`
	// FailedStep, Code and Reason describe the failure being rolled back or reported.
	FailedStep string `json:"failedStep,omitempty"`
	Code       string `json:"code,omitempty"`
	Reason     string `json:"reason,omitempty"`
	// Obsolete is the version the commit pushed out, removed once the success is reported.
	Obsolete string `json:"obsolete,omitempty"`
}

// clone returns a deep copy of s.
func (s DeviceState) clone() DeviceState {
	out := DeviceState{}
	if s.Current != nil {
		c := s.Current.clone()
		out.Current = &c
	}
	if s.Previous != nil {
		p := s.Previous.clone()
		out.Previous = &p
	}
	if s.InFlight != nil {
		f := *s.InFlight
		out.InFlight = &f
	}
	return out
}

func (i Installed) clone() Installed {
	if i.Launch.EnvironmentVariables != nil {
		env := make(map[string]string, len(i.Launch.EnvironmentVariables))
		for k, v := range i.Launch.EnvironmentVariables {
			env[k] = v
		}
		i.Launch.EnvironmentVariables = env
	}
	return i
}

// StateStore keeps the DeviceState. Save replaces it atomically: a reader after a crash sees the old state
// or the new one, never a mix.
type StateStore interface {
	// Load returns the saved state, or the zero state when none was saved.
	Load() (DeviceState, error)
	// Save replaces the saved state.
	Save(DeviceState) error
}

// FileState is a StateStore in one JSON file, replaced by writing a temporary file beside it, syncing it,
// renaming it over the old one and syncing the directory.
type FileState struct {
	path string
}

var _ StateStore = (*FileState)(nil)

// NewFileState returns a store at path; its directory must exist.
func NewFileState(path string) *FileState { return &FileState{path: path} }

// Load implements StateStore.
func (f *FileState) Load() (DeviceState, error) {
	b, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return DeviceState{}, nil
	}
	if err != nil {
		return DeviceState{}, fmt.Errorf("read state: %w", err)
	}
	var s DeviceState
	if err := json.Unmarshal(b, &s); err != nil {
		return DeviceState{}, fmt.Errorf("decode state %s: %w", f.path, err)
	}
	return s, nil
}

// Save implements StateStore.
func (f *FileState) Save(s DeviceState) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	return writeFileAtomic(f.path, append(b, '\n'), 0o600)
}

// writeFileAtomic replaces path with data: temp file, fsync, rename, fsync of the directory.
func writeFileAtomic(path string, data []byte, perm fs.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("replace %s: %w", path, err)
	}
	return syncDir(dir)
}

// syncDir makes a rename or creation in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// MemoryState is a StateStore in memory, for the in-memory family. A host that keeps it across agents
// models a device whose storage survives a restart.
type MemoryState struct {
	mu    sync.Mutex
	state DeviceState
	saves int
}

var _ StateStore = (*MemoryState)(nil)

// NewMemoryState returns an empty store.
func NewMemoryState() *MemoryState { return &MemoryState{} }

// Load implements StateStore.
func (m *MemoryState) Load() (DeviceState, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state.clone(), nil
}

// Save implements StateStore.
func (m *MemoryState) Save(s DeviceState) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.state = s.clone()
	m.saves++
	return nil
}

// Saves returns how many times the state was saved.
func (m *MemoryState) Saves() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.saves
}
