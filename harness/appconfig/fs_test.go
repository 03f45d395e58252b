package appconfig

import (
	"fmt"
	"io/fs"
	"testing/fstest"
)

var sprintf = fmt.Sprintf

// mapFS is a file system of one directory of files.
type mapFS map[string][]byte

func (m mapFS) Open(name string) (fs.File, error) {
	f := fstest.MapFS{}
	for k, v := range m {
		f[k] = &fstest.MapFile{Data: v}
	}
	return f.Open(name)
}
