package artifacts

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"strings"
)

// checksumAlgorithm is one of S3's additional checksums, named as in x-amz-sdk-checksum-algorithm ("CRC32").
// Its value travels base64-encoded in the header x-amz-checksum-<name in lower case>.
type checksumAlgorithm string

var (
	crc32cTable    = crc32.MakeTable(crc32.Castagnoli)
	crc64NVMETable = crc64.MakeTable(0x9a6c9329ac4bc9b5) // CRC-64/NVME, reflected, as the SDKs compute it
)

// checksumAlgorithms are the algorithms S3 and its SDKs use, in the order a request's headers are searched.
var checksumAlgorithms = []checksumAlgorithm{"CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256", "SHA512"}

func parseChecksumAlgorithm(s string) (checksumAlgorithm, bool) {
	for _, a := range checksumAlgorithms {
		if strings.EqualFold(s, string(a)) {
			return a, true
		}
	}
	return "", false
}

// header is the algorithm's header and trailer name, in lower case.
func (a checksumAlgorithm) header() string { return "x-amz-checksum-" + strings.ToLower(string(a)) }

func (a checksumAlgorithm) newHash() hash.Hash {
	switch a {
	case "CRC32":
		return crc32.NewIEEE()
	case "CRC32C":
		return crc32.New(crc32cTable)
	case "CRC64NVME":
		return crc64.New(crc64NVMETable)
	case "SHA1":
		return sha1.New()
	case "SHA256":
		return sha256.New()
	case "SHA512":
		return sha512.New()
	}
	panic("artifacts: unknown checksum algorithm " + string(a))
}

// validValue reports whether v is a well-formed value of the algorithm: base64 of a digest of its size.
func (a checksumAlgorithm) validValue(v string) bool {
	b, err := base64.StdEncoding.DecodeString(v)
	return err == nil && len(b) == a.newHash().Size()
}

func base64Sum(h hash.Hash) string { return base64.StdEncoding.EncodeToString(h.Sum(nil)) }
