package agent

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Versions is the device's store of unpacked application versions and the pointer to the active one, the
// version the device runs. Versions are named by their version id: the id of the job that installed them
// and the digest of its document (VersionID).
type Versions interface {
	// Extract unpacks the bundle as version id, replacing an earlier partial or failed copy, and returns it.
	// The version appears whole or not at all. It refuses to replace the active version (ErrActiveVersion).
	// A bundle that cannot be unpacked (not gzip, bad tar, unsafe member) is an error naming the cause.
	Extract(ctx context.Context, id string, bundle Blob) (Version, error)
	// Open returns version id, or an error wrapping fs.ErrNotExist when it is not on the device.
	Open(id string) (Version, error)
	// Activate atomically makes id the active version; "" leaves no version active.
	Activate(id string) error
	// Active returns the active version's id, "" when none.
	Active() (string, error)
	// Remove deletes version id; removing the active version is ErrActiveVersion, a missing one is no error.
	Remove(id string) error
}

// Version is an unpacked application version.
type Version struct {
	// ID is its version id (VersionID).
	ID string
	// Dir is its directory on the device; empty in the in-memory family.
	Dir string
	// Files reads its files.
	Files Files
}

// Files is read access to a version's files by slash-separated path relative to the version's root.
// Symlinks are followed, never out of the version.
type Files interface {
	Stat(name string) (fs.FileInfo, error)
	ReadFile(name string) ([]byte, error)
}

// validID matches the ids the agent accepts as file names: job ids, version ids (VersionID) and the
// staging names derived from them.
var validID = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9_.@-]{0,159}$`)

// validJobID matches the job ids the agent carries out: a version id adds "@digest" to one.
var validJobID = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,110}$`)

// CheckJobID checks that a job id can name a version on the device: 1 to 111 of [A-Za-z0-9_.-], not
// starting with '.'. A kind's first state rejects a job whose id fails it.
func CheckJobID(id string) error {
	if !validJobID.MatchString(id) {
		return fmt.Errorf("job id %q: want 1-111 of [A-Za-z0-9_.-], not starting with '.'", id)
	}
	return nil
}

func checkID(id string) error {
	if !validID.MatchString(id) {
		return fmt.Errorf("id %q: want 1-160 of [A-Za-z0-9_.@-], not starting with '.'", id)
	}
	return nil
}

// DirVersions keeps versions on disk under a device directory:
//
//	<dir>/versions/<id>/   an unpacked version
//	<dir>/current          symlink to versions/<id>, the active version
//
// A bundle is unpacked into a hidden temporary directory, synced and renamed into place, so a version
// directory is always complete. Activate replaces the current symlink by renaming a new one over it.
// Writes go through an os.Root, so even a member that slipped past the checks cannot land outside.
type DirVersions struct {
	dir      string
	maxBytes int64
}

var _ Versions = (*DirVersions)(nil)

// NewDirVersions returns the versions under dir, creating dir/versions. maxBytes bounds a bundle's
// uncompressed size (0: DefaultMaxBundleBytes).
func NewDirVersions(dir string, maxBytes int64) (*DirVersions, error) {
	if err := os.MkdirAll(filepath.Join(dir, "versions"), 0o755); err != nil {
		return nil, fmt.Errorf("create versions dir: %w", err)
	}
	return &DirVersions{dir: dir, maxBytes: maxBytes}, nil
}

func (d *DirVersions) path(id string) string { return filepath.Join(d.dir, "versions", id) }

// Extract implements Versions.
func (d *DirVersions) Extract(ctx context.Context, id string, bundle Blob) (Version, error) {
	if err := checkID(id); err != nil {
		return Version{}, err
	}
	if active, err := d.Active(); err != nil {
		return Version{}, err
	} else if active == id {
		return Version{}, fmt.Errorf("extract %s: %w", id, ErrActiveVersion)
	}
	tmp := filepath.Join(d.dir, "versions", "."+id+".extract")
	if err := os.RemoveAll(tmp); err != nil {
		return Version{}, fmt.Errorf("clear %s: %w", tmp, err)
	}
	if err := os.Mkdir(tmp, 0o755); err != nil {
		return Version{}, fmt.Errorf("create %s: %w", tmp, err)
	}
	if err := d.unpack(ctx, tmp, bundle); err != nil {
		os.RemoveAll(tmp)
		return Version{}, err
	}
	final := d.path(id)
	if err := os.RemoveAll(final); err != nil {
		os.RemoveAll(tmp)
		return Version{}, fmt.Errorf("clear %s: %w", final, err)
	}
	if err := os.Rename(tmp, final); err != nil {
		os.RemoveAll(tmp)
		return Version{}, fmt.Errorf("install %s: %w", id, err)
	}
	if err := syncDir(filepath.Join(d.dir, "versions")); err != nil {
		return Version{}, err
	}
	return Version{ID: id, Dir: final, Files: dirFiles{final}}, nil
}

func (d *DirVersions) unpack(ctx context.Context, dst string, bundle Blob) error {
	rc, err := bundle.Open()
	if err != nil {
		return fmt.Errorf("open bundle: %w", err)
	}
	defer rc.Close()
	root, err := os.OpenRoot(dst)
	if err != nil {
		return fmt.Errorf("open %s: %w", dst, err)
	}
	defer root.Close()
	err = readBundle(rc, d.maxBytes, func(m member, body io.Reader) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if dir := path.Dir(m.name); dir != "." {
			if err := root.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("create %s: %w", dir, err)
			}
		}
		switch m.typ {
		case tar.TypeDir:
			if err := root.Mkdir(m.name, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("create %s: %w", m.name, err)
			}
		case tar.TypeSymlink:
			if err := root.Symlink(m.link, m.name); err != nil {
				return fmt.Errorf("link %s: %w", m.name, err)
			}
		case tar.TypeLink:
			if err := root.Link(m.link, m.name); err != nil {
				return fmt.Errorf("link %s: %w", m.name, err)
			}
		case tar.TypeReg:
			f, err := root.OpenFile(m.name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, m.mode|0o200)
			if err != nil {
				return fmt.Errorf("create %s: %w", m.name, err)
			}
			if _, err := io.Copy(f, body); err != nil {
				f.Close()
				return fmt.Errorf("write %s: %w", m.name, err)
			}
			// The mode asked at creation is masked by the umask; set it exactly.
			if err := f.Chmod(m.mode); err != nil {
				f.Close()
				return fmt.Errorf("chmod %s: %w", m.name, err)
			}
			if err := f.Sync(); err != nil {
				f.Close()
				return fmt.Errorf("sync %s: %w", m.name, err)
			}
			if err := f.Close(); err != nil {
				return fmt.Errorf("write %s: %w", m.name, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return syncDir(dst)
}

// Open implements Versions.
func (d *DirVersions) Open(id string) (Version, error) {
	if err := checkID(id); err != nil {
		return Version{}, fmt.Errorf("open version: %w", fs.ErrNotExist)
	}
	p := d.path(id)
	fi, err := os.Stat(p)
	if err != nil {
		return Version{}, fmt.Errorf("open version %s: %w", id, err)
	}
	if !fi.IsDir() {
		return Version{}, fmt.Errorf("open version %s: not a directory: %w", id, fs.ErrNotExist)
	}
	return Version{ID: id, Dir: p, Files: dirFiles{p}}, nil
}

// Activate implements Versions.
func (d *DirVersions) Activate(id string) error {
	cur := filepath.Join(d.dir, "current")
	if id == "" {
		if err := os.Remove(cur); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("deactivate: %w", err)
		}
		return syncDir(d.dir)
	}
	if _, err := d.Open(id); err != nil {
		return fmt.Errorf("activate: %w", err)
	}
	tmp := filepath.Join(d.dir, ".current.next")
	os.Remove(tmp)
	if err := os.Symlink(filepath.Join("versions", id), tmp); err != nil {
		return fmt.Errorf("activate %s: %w", id, err)
	}
	if err := os.Rename(tmp, cur); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("activate %s: %w", id, err)
	}
	return syncDir(d.dir)
}

// Active implements Versions.
func (d *DirVersions) Active() (string, error) {
	target, err := os.Readlink(filepath.Join(d.dir, "current"))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read current: %w", err)
	}
	id, ok := strings.CutPrefix(filepath.ToSlash(target), "versions/")
	if !ok || checkID(id) != nil {
		return "", fmt.Errorf("current points at %q, not a version", target)
	}
	return id, nil
}

// Remove implements Versions.
func (d *DirVersions) Remove(id string) error {
	if err := checkID(id); err != nil {
		return nil
	}
	if active, err := d.Active(); err != nil {
		return err
	} else if active == id {
		return fmt.Errorf("remove %s: %w", id, ErrActiveVersion)
	}
	if err := os.RemoveAll(d.path(id)); err != nil {
		return fmt.Errorf("remove %s: %w", id, err)
	}
	return os.RemoveAll(filepath.Join(d.dir, "versions", "."+id+".extract"))
}

// dirFiles reads a version directory through an os.Root, so symlinks never lead out of it.
type dirFiles struct{ dir string }

func (f dirFiles) Stat(name string) (fs.FileInfo, error) {
	root, err := os.OpenRoot(f.dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	return root.Stat(name)
}

func (f dirFiles) ReadFile(name string) ([]byte, error) {
	root, err := os.OpenRoot(f.dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	return root.ReadFile(name)
}

// MemoryVersions keeps versions in memory, for the in-memory family: bundles are still gunzipped, untarred
// and checked member by member exactly as on disk, but only the contents of small files (scripts, launch
// files, manifests; up to keepBytes each) are kept, so thousands of robots fit in one process.
type MemoryVersions struct {
	mu       sync.Mutex
	versions map[string]*memTree
	active   string
	maxBytes int64
}

var _ Versions = (*MemoryVersions)(nil)

// keepBytes is the largest file whose contents MemoryVersions keeps; larger files keep their size only.
const keepBytes = 64 << 10

// NewMemoryVersions returns an empty store. maxBytes bounds a bundle's uncompressed size
// (0: DefaultMaxBundleBytes).
func NewMemoryVersions(maxBytes int64) *MemoryVersions {
	return &MemoryVersions{versions: map[string]*memTree{}, maxBytes: maxBytes}
}

// Extract implements Versions.
func (m *MemoryVersions) Extract(ctx context.Context, id string, bundle Blob) (Version, error) {
	if err := checkID(id); err != nil {
		return Version{}, err
	}
	m.mu.Lock()
	active := m.active
	m.mu.Unlock()
	if active == id {
		return Version{}, fmt.Errorf("extract %s: %w", id, ErrActiveVersion)
	}
	rc, err := bundle.Open()
	if err != nil {
		return Version{}, fmt.Errorf("open bundle: %w", err)
	}
	defer rc.Close()
	t := &memTree{files: map[string]*memFile{}, links: map[string]string{}}
	err = readBundle(rc, m.maxBytes, func(mb member, body io.Reader) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		for dir := path.Dir(mb.name); dir != "."; dir = path.Dir(dir) {
			if _, ok := t.files[dir]; !ok {
				t.files[dir] = &memFile{name: path.Base(dir), mode: fs.ModeDir | 0o755}
			}
		}
		f := &memFile{name: path.Base(mb.name), mode: mb.mode, size: mb.size}
		switch mb.typ {
		case tar.TypeDir:
			f.mode = fs.ModeDir | 0o755
		case tar.TypeSymlink:
			f.mode = fs.ModeSymlink | 0o777
			t.links[mb.name] = mb.link
		case tar.TypeLink:
			src := t.files[mb.link]
			c := *src
			c.name = f.name
			f = &c
		case tar.TypeReg:
			if mb.size <= keepBytes {
				b, err := io.ReadAll(body)
				if err != nil {
					return fmt.Errorf("read %s: %w", mb.name, err)
				}
				f.data, f.kept = b, true
			} else if _, err := io.Copy(io.Discard, body); err != nil {
				return fmt.Errorf("read %s: %w", mb.name, err)
			}
		}
		t.files[mb.name] = f
		return nil
	})
	if err != nil {
		return Version{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.active == id {
		return Version{}, fmt.Errorf("extract %s: %w", id, ErrActiveVersion)
	}
	m.versions[id] = t
	return Version{ID: id, Files: t}, nil
}

// Open implements Versions.
func (m *MemoryVersions) Open(id string) (Version, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.versions[id]
	if !ok {
		return Version{}, fmt.Errorf("open version %s: %w", id, fs.ErrNotExist)
	}
	return Version{ID: id, Files: t}, nil
}

// Activate implements Versions.
func (m *MemoryVersions) Activate(id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.versions[id]; !ok && id != "" {
		return fmt.Errorf("activate: version %s: %w", id, fs.ErrNotExist)
	}
	m.active = id
	return nil
}

// Active implements Versions.
func (m *MemoryVersions) Active() (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.active, nil
}

// Remove implements Versions.
func (m *MemoryVersions) Remove(id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if id != "" && id == m.active {
		return fmt.Errorf("remove %s: %w", id, ErrActiveVersion)
	}
	delete(m.versions, id)
	return nil
}

// Len returns how many versions are held.
func (m *MemoryVersions) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.versions)
}

// memTree is an unpacked version in memory. It is immutable once extracted.
type memTree struct {
	files map[string]*memFile
	links map[string]string
}

type memFile struct {
	name string
	mode fs.FileMode
	size int64
	data []byte
	kept bool
}

func (t *memTree) lookup(name string) (*memFile, error) {
	if !fs.ValidPath(name) {
		return nil, fs.ErrInvalid
	}
	if name == "." {
		return &memFile{name: ".", mode: fs.ModeDir | 0o755}, nil
	}
	target, err := resolveLink(name, t.links)
	if err != nil {
		return nil, err
	}
	f, ok := t.files[target]
	if !ok {
		return nil, fs.ErrNotExist
	}
	return f, nil
}

// Stat implements Files.
func (t *memTree) Stat(name string) (fs.FileInfo, error) {
	f, err := t.lookup(name)
	if err != nil {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: err}
	}
	return f, nil
}

// ReadFile implements Files. A file larger than keepBytes has no contents in memory.
func (t *memTree) ReadFile(name string) ([]byte, error) {
	f, err := t.lookup(name)
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: name, Err: err}
	}
	if f.mode.IsDir() {
		return nil, &fs.PathError{Op: "read", Path: name, Err: errors.New("is a directory")}
	}
	if !f.kept {
		return nil, &fs.PathError{Op: "read", Path: name, Err: fmt.Errorf("contents of files over %d bytes are not kept in memory", keepBytes)}
	}
	return bytes.Clone(f.data), nil
}

func (f *memFile) Name() string       { return f.name }
func (f *memFile) Size() int64        { return f.size }
func (f *memFile) Mode() fs.FileMode  { return f.mode }
func (f *memFile) ModTime() time.Time { return time.Time{} }
func (f *memFile) IsDir() bool        { return f.mode.IsDir() }
func (f *memFile) Sys() any           { return nil }
