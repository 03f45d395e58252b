package agent

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"sync"
)

// A bundle is a gzip-compressed tar archive of an application version. Every member is checked before
// anything is written: names must be local (no absolute paths, no "..", nothing through one of the bundle's
// own symlinks), only regular files, directories, symlinks and hard links are accepted, a symlink followed
// through the bundle's other symlinks must stay inside the bundle, a hard link must name an earlier regular
// file, names are unique, and the total size is bounded. Modes keep the permission bits only (no setuid).

// Bundle limits.
const (
	// DefaultMaxBundleBytes bounds the uncompressed size of a bundle (a gzip bomb ends extraction).
	DefaultMaxBundleBytes = 4 << 30
	// maxBundleEntries bounds the number of members.
	maxBundleEntries = 100_000
	// maxLinkHops bounds symlink resolution, as the kernel's ELOOP does.
	maxLinkHops = 40
)

// member is one checked entry of a bundle.
type member struct {
	name string      // cleaned, slash-separated, local
	typ  byte        // tar.TypeReg, tar.TypeDir, tar.TypeSymlink or tar.TypeLink
	mode fs.FileMode // permission bits
	link string      // symlink target as archived, or the cleaned hard link target
	size int64
}

// readBundle checks every member of the gzip'd tar in r and hands it to fn, with the contents of regular
// files in body. fn sees members in archive order; links are checked as they come and again, all together,
// once the archive has been read, before readBundle returns nil.
func readBundle(r io.Reader, maxBytes int64, fn func(m member, body io.Reader) error) error {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBundleBytes
	}
	gz, err := openGzip(r)
	if err != nil {
		return fmt.Errorf("not a gzip stream: %w", err)
	}
	defer closeGzip(gz)
	tr := tar.NewReader(gz.zr)
	seen := map[string]byte{}
	links := map[string]string{}
	var total int64
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read tar: %w", err)
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		if len(seen) >= maxBundleEntries {
			return fmt.Errorf("more than %d members", maxBundleEntries)
		}
		m, err := checkMember(hdr, seen, links)
		if err != nil {
			return err
		}
		if m.name == "" { // the archive's root directory
			continue
		}
		total += m.size
		if total > maxBytes {
			return fmt.Errorf("bundle larger than %d bytes", maxBytes)
		}
		seen[m.name] = m.typ
		if m.typ == tar.TypeSymlink {
			links[m.name] = m.link
		}
		var body io.Reader = eofReader{}
		if m.typ == tar.TypeReg {
			body = tr
		}
		if err := fn(m, body); err != nil {
			return err
		}
	}
	// Checked together: a link may point through another link archived after it.
	for name := range links {
		if _, err := resolveLink(name, links); err != nil {
			return fmt.Errorf("symlink %s: %w", name, err)
		}
	}
	return nil
}

// checkMember validates one header against the members seen so far.
func checkMember(hdr *tar.Header, seen map[string]byte, links map[string]string) (member, error) {
	name, err := cleanMemberName(hdr.Name)
	if err != nil {
		return member{}, err
	}
	m := member{name: name, mode: fs.FileMode(hdr.Mode).Perm()}
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeRegA:
		m.typ, m.size = tar.TypeReg, hdr.Size
	case tar.TypeDir:
		m.typ = tar.TypeDir
	case tar.TypeSymlink:
		m.typ, m.link = tar.TypeSymlink, hdr.Linkname
		if hdr.Linkname == "" || path.IsAbs(hdr.Linkname) || !fs.ValidPath(path.Clean(path.Join(path.Dir(name), hdr.Linkname))) {
			return member{}, fmt.Errorf("symlink %s -> %s: %w", name, hdr.Linkname, ErrUnsafePath)
		}
	case tar.TypeLink:
		target, err := cleanMemberName(hdr.Linkname)
		if err != nil || target == "" {
			return member{}, fmt.Errorf("hard link %s -> %s: %w", name, hdr.Linkname, ErrUnsafePath)
		}
		if seen[target] != tar.TypeReg {
			return member{}, fmt.Errorf("hard link %s -> %s: not an earlier regular file", name, hdr.Linkname)
		}
		m.typ, m.link = tar.TypeLink, target
	default:
		return member{}, fmt.Errorf("member %s: type %q not allowed", hdr.Name, hdr.Typeflag)
	}
	if name == "" {
		if m.typ != tar.TypeDir {
			return member{}, fmt.Errorf("member %q: %w", hdr.Name, ErrUnsafePath)
		}
		return m, nil
	}
	if _, dup := seen[name]; dup {
		return member{}, fmt.Errorf("member %s appears twice", name)
	}
	for dir := path.Dir(name); dir != "."; dir = path.Dir(dir) {
		if _, isLink := links[dir]; isLink {
			return member{}, fmt.Errorf("member %s lies under symlink %s: %w", name, dir, ErrUnsafePath)
		}
		if t, ok := seen[dir]; ok && t != tar.TypeDir {
			return member{}, fmt.Errorf("member %s lies under non-directory %s", name, dir)
		}
	}
	return m, nil
}

// cleanMemberName returns the archive name as a clean local slash path; "" is the archive's root.
func cleanMemberName(name string) (string, error) {
	if strings.ContainsRune(name, 0) || strings.ContainsRune(name, '\\') {
		return "", fmt.Errorf("member %q: %w", name, ErrUnsafePath)
	}
	if path.IsAbs(name) {
		return "", fmt.Errorf("member %q: %w", name, ErrUnsafePath)
	}
	c := path.Clean(name)
	if c == "." {
		return "", nil
	}
	if !fs.ValidPath(c) {
		return "", fmt.Errorf("member %q: %w", name, ErrUnsafePath)
	}
	return c, nil
}

// resolveLink follows name through the symlinks in links and returns where it lands, relative to the bundle
// root. It fails with ErrUnsafePath when any step climbs out of the bundle.
func resolveLink(name string, links map[string]string) (string, error) {
	parts := strings.Split(name, "/")
	var stack []string
	hops := 0
	for len(parts) > 0 {
		p := parts[0]
		parts = parts[1:]
		switch p {
		case "", ".":
			continue
		case "..":
			if len(stack) == 0 {
				return "", ErrUnsafePath
			}
			stack = stack[:len(stack)-1]
			continue
		}
		stack = append(stack, p)
		target, ok := links[strings.Join(stack, "/")]
		if !ok {
			continue
		}
		if hops++; hops > maxLinkHops {
			return "", errors.New("too many levels of symbolic links")
		}
		if path.IsAbs(target) {
			return "", ErrUnsafePath
		}
		stack = stack[:len(stack)-1]
		parts = append(strings.Split(target, "/"), parts...)
	}
	return strings.Join(stack, "/"), nil
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// gzipReaders keeps gzip readers between bundles: each holds flate's 32 KiB window and its Huffman tables,
// which Reset reuses, and the buffered reader it reads through. A fleet of in-process devices unpacking a bundle
// each allocated them afresh every time — a tenth of the bytes a rollout over HTTP allocated — and a gzip reader
// reset onto a plain reader still wraps it in a new 4 KiB bufio.Reader.
var gzipReaders sync.Pool

type keptGzip struct {
	zr *gzip.Reader
	br *bufio.Reader
}

func openGzip(r io.Reader) (*keptGzip, error) {
	if k, ok := gzipReaders.Get().(*keptGzip); ok {
		k.br.Reset(r)
		if err := k.zr.Reset(k.br); err != nil {
			closeGzip(k)
			return nil, err
		}
		return k, nil
	}
	k := &keptGzip{br: bufio.NewReader(r)}
	zr, err := gzip.NewReader(k.br)
	if err != nil {
		return nil, err
	}
	k.zr = zr
	return k, nil
}

// closeGzip ends k's stream and keeps the reader for the next bundle, holding nothing of this one.
func closeGzip(k *keptGzip) {
	k.zr.Close()
	k.br.Reset(bytes.NewReader(emptyGzip))
	k.zr.Reset(k.br)
	gzipReaders.Put(k)
}

// emptyGzip is a gzip stream of nothing, which a kept reader is reset to so it holds no caller's reader.
var emptyGzip = func() []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Close()
	return b.Bytes()
}()
