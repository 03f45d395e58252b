package artifacts

import (
	"crypto/sha256"
	"encoding/hex"
	"net"
	"path/filepath"
	"strings"
	"unicode/utf8"
)

// MaxKeyLength is the longest object key S3 accepts, in bytes of UTF-8.
const MaxKeyLength = 1024

// validBucketName applies S3's naming rules for general purpose buckets: 3 to 63 characters of lower-case
// letters, digits, dots and hyphens, starting and ending with a letter or digit, no two dots in a row, not an
// IP address, and none of the prefixes and suffixes S3 reserves. A valid name is also a safe directory name.
func validBucketName(name string) bool {
	if len(name) < 3 || len(name) > 63 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case c == '-' || c == '.':
			if i == 0 || i == len(name)-1 {
				return false
			}
		default:
			return false
		}
	}
	if strings.Contains(name, "..") || net.ParseIP(name) != nil {
		return false
	}
	for _, p := range []string{"xn--", "sthree-", "amzn-s3-demo-"} {
		if strings.HasPrefix(name, p) {
			return false
		}
	}
	for _, s := range []string{"-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"} {
		if strings.HasSuffix(name, s) {
			return false
		}
	}
	return true
}

// validKey reports whether key is an object key this store accepts: 1 to MaxKeyLength bytes of valid UTF-8.
// Beyond that a key is any text at all — "..", a leading "/", control characters — because it is never used
// as a path (see objectFile).
func validKey(key string) bool {
	return key != "" && len(key) <= MaxKeyLength && utf8.ValidString(key)
}

// objectFile is the file of key within its bucket's directory, relative to it: the SHA-256 of the key in hex,
// under a directory named by its first two digits so no directory grows too large. Nothing of the key itself
// reaches the file system; the key is kept in the file's metadata.
func objectFile(key string) string {
	sum := sha256.Sum256([]byte(key))
	name := hex.EncodeToString(sum[:])
	return filepath.Join(name[:2], name)
}
