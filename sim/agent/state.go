package agent

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
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

// Installed is a version on the device: the kind and job that installed it, the digest of the job document
// it was installed from — job id and digest together are its version id — and what its kind keeps to launch
// it again.
//
// In JSON, the record's members sit beside kind, jobId and digest in one object: the layout of state written
// before kinds existed, which a record without a kind still reads as.
type Installed struct {
	// Kind is the name of the kind that installed it (Kind.Name). Empty in state written before kinds
	// existed: such a version is of the agent's first kind.
	Kind  string
	JobID string
	// Digest is the hex SHA-256 of the job document (DocumentDigest). It is empty in state written before
	// versions were keyed by it; such a version matches no job, so a job with its id is carried out again.
	Digest string
	// Record is what the kind keeps of the version (Job.Record): a JSON object, or empty.
	Record json.RawMessage
}

// The members of an Installed's JSON object that are the agent's; a record's own members are the rest.
const (
	installedKind   = "kind"
	installedJobID  = "jobId"
	installedDigest = "digest"
)

// MarshalJSON writes the record's members and kind, jobId and digest as one object.
func (i Installed) MarshalJSON() ([]byte, error) {
	m := map[string]json.RawMessage{}
	if len(i.Record) > 0 {
		if err := json.Unmarshal(i.Record, &m); err != nil {
			return nil, fmt.Errorf("installed version %s: record: want a JSON object: %w", i.VersionID(), err)
		}
	}
	for _, k := range []string{installedKind, installedJobID, installedDigest} {
		if _, taken := m[k]; taken {
			return nil, fmt.Errorf("installed version %s: record member %q is the agent's", i.VersionID(), k)
		}
	}
	put := func(k, v string) {
		b, _ := json.Marshal(v)
		m[k] = b
	}
	put(installedJobID, i.JobID)
	if i.Kind != "" {
		put(installedKind, i.Kind)
	}
	if i.Digest != "" {
		put(installedDigest, i.Digest)
	}
	return json.Marshal(m)
}

// UnmarshalJSON reads what MarshalJSON writes, and the state of agents before kinds existed.
func (i *Installed) UnmarshalJSON(b []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	out := Installed{}
	for k, dst := range map[string]*string{installedKind: &out.Kind, installedJobID: &out.JobID, installedDigest: &out.Digest} {
		if v, ok := m[k]; ok {
			if err := json.Unmarshal(v, dst); err != nil {
				return fmt.Errorf("installed version: %s: %w", k, err)
			}
			delete(m, k)
		}
	}
	if len(m) > 0 {
		rec, err := json.Marshal(m)
		if err != nil {
			return err
		}
		out.Record = rec
	}
	*i = out
	return nil
}

// InFlight is an execution the agent has started and not finished.
type InFlight struct {
	JobID           string `json:"jobId"`
	ExecutionNumber int64  `json:"executionNumber,omitempty"`
	// Document is the raw job document, as the service sent it.
	Document string `json:"document"`
	// Step is the state reached: a state of the job's kind, or StateRollingBack, StateFailed, StateRejected.
	Step string `json:"step"`
	// FailedStep, Code and Reason describe the failure being rolled back or reported.
	FailedStep string `json:"failedStep,omitempty"`
	Code       string `json:"code,omitempty"`
	Reason     string `json:"reason,omitempty"`
	// Unrestored says the rollback before the failure could not restore the previous version.
	Unrestored bool `json:"unrestored,omitempty"`
	// Obsolete is the version the commit pushed out, removed once the success is reported.
	Obsolete string `json:"obsolete,omitempty"`
}

// VersionID returns the id the version is kept under on the device: VersionID(i.JobID, i.Digest).
func (i Installed) VersionID() string { return VersionID(i.JobID, i.Digest) }

// VersionID is the id of the version job jobID installs from a document with digest: "<jobID>@<the
// digest's first 16 hex digits>", so two documents under one job id — the same id from two services, a job
// recreated — are two versions. An empty digest (state of an older agent) gives the bare job id.
func VersionID(jobID, digest string) string {
	if len(digest) < versionDigestLen {
		return jobID
	}
	return jobID + "@" + digest[:versionDigestLen]
}

// VersionJob returns the job id of a version id.
func VersionJob(versionID string) string {
	job, _, _ := strings.Cut(versionID, "@")
	return job
}

// versionDigestLen is how many hex digits of the document digest a version id carries: 64 bits tell apart
// the documents one job id may come with.
const versionDigestLen = 16

// DocumentDigest returns the hex SHA-256 of a job document in canonical JSON (members sorted, no
// insignificant space, numbers as written), so the same document digests alike however the service laid
// it out. A document that is not JSON digests as its bytes.
func DocumentDigest(raw string) string {
	if m := lastDigest.Load(); m != nil && m.raw == raw {
		return m.sum
	}
	sum := documentDigest(raw)
	lastDigest.Store(&digestMemo{raw: raw, sum: sum})
	return sum
}

// lastDigest is the last document digested and its digest: the agents of a fleet in one process digest the
// same job document once each, and canonicalizing it (a decode and an encode) was a tenth of their garbage.
var lastDigest atomic.Pointer[digestMemo]

type digestMemo struct{ raw, sum string }

func documentDigest(raw string) string {
	b := []byte(raw)
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err == nil && !dec.More() {
		if c, err := json.Marshal(v); err == nil {
			b = c
		}
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
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
	i.Record = append(json.RawMessage(nil), i.Record...)
	if len(i.Record) == 0 {
		i.Record = nil
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
