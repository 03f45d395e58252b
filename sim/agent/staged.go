package agent

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"path"
	"sort"
)

// Bundle builds a version in memory for Versions.Extract: files added one by one or unpacked from downloaded
// tar.gz archives, written out as one tar.gz. The Greengrass V1 core and the OpsWorks agent stage what they
// deploy with it.
type Bundle struct{ files map[string]bundleFile }

type bundleFile struct {
	body []byte
	mode int64
}

// File adds (or replaces) the file name.
func (b *Bundle) File(name string, body []byte, mode int64) {
	if b.files == nil {
		b.files = map[string]bundleFile{}
	}
	b.files[name] = bundleFile{body, mode}
}

// Unpack adds the regular files of the tar.gz blob under dir, at most limit bytes in all; it returns how many
// bytes it added. Members that are not regular files or directories, or whose names leave dir, are refused.
func (b *Bundle) Unpack(dir string, blob Blob, limit int64) (int64, error) {
	rc, err := blob.Open()
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	gz, err := gzip.NewReader(rc)
	if err != nil {
		return 0, fmt.Errorf("not a tar.gz: %v", err)
	}
	tr := tar.NewReader(gz)
	var n int64
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("not a tar.gz: %v", err)
		}
		name := path.Clean("/" + h.Name)
		if name == "/" {
			continue
		}
		switch h.Typeflag {
		case tar.TypeDir:
			continue
		case tar.TypeReg:
		default:
			return n, fmt.Errorf("member %q is not a regular file", h.Name)
		}
		if h.Size > limit-n {
			return n, fmt.Errorf("the archives unpack to more than the %d bytes allowed", limit)
		}
		body, err := io.ReadAll(io.LimitReader(tr, h.Size))
		if err != nil {
			return n, fmt.Errorf("member %q: %v", h.Name, err)
		}
		n += int64(len(body))
		b.File(dir+name, body, h.Mode&0o755|0o600)
	}
}

// Blob returns the bundle as a tar.gz, directories first.
func (b *Bundle) Blob() (Blob, error) {
	names := make([]string, 0, len(b.files))
	dirs := map[string]bool{}
	for n := range b.files {
		names = append(names, n)
		for d := path.Dir(n); d != "."; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	sort.Strings(names)
	dirNames := make([]string, 0, len(dirs))
	for d := range dirs {
		dirNames = append(dirNames, d)
	}
	sort.Strings(dirNames)
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, d := range dirNames {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755}); err != nil {
			return nil, err
		}
	}
	for _, n := range names {
		f := b.files[n]
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: n, Mode: f.mode, Size: int64(len(f.body))}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	return BytesBlob(buf.Bytes()), nil
}
