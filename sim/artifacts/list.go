package artifacts

import (
	"encoding/base64"
	"encoding/xml"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// listQuery is one page of a listing, whichever version of ListObjects asks for it.
type listQuery struct {
	prefix, delimiter string
	after             string // keys up to and including after are skipped
	skipUnder         string // a common prefix an earlier page returned: keys under it are skipped
	maxKeys           int
}

// listResult is one page: objects and common prefixes, each in key order, at most maxKeys of them together.
type listResult struct {
	objects   []*objectMeta
	prefixes  []string
	truncated bool
	// last is the last object key or common prefix on the page, which the next page starts after.
	last         string
	lastIsPrefix bool
}

func (s *Store) list(bucket string, lq listQuery) (listResult, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	b := s.buckets[bucket]
	if b == nil {
		return listResult{}, ErrNoSuchBucket
	}
	var res listResult
	if lq.maxKeys == 0 {
		return res, nil
	}
	i, _ := slices.BinarySearch(b.keys, max(lq.prefix, lq.after))
	for _, k := range b.keys[i:] {
		if !strings.HasPrefix(k, lq.prefix) {
			break
		}
		if k <= lq.after || (lq.skipUnder != "" && strings.HasPrefix(k, lq.skipUnder)) {
			continue
		}
		cp := ""
		if lq.delimiter != "" {
			if j := strings.Index(k[len(lq.prefix):], lq.delimiter); j >= 0 {
				cp = k[:len(lq.prefix)+j+len(lq.delimiter)]
				if res.lastIsPrefix && res.last == cp {
					continue // rolled up into the prefix just returned
				}
			}
		}
		if len(res.objects)+len(res.prefixes) == lq.maxKeys {
			res.truncated = true
			break
		}
		if cp != "" {
			res.prefixes = append(res.prefixes, cp)
			res.last, res.lastIsPrefix = cp, true
		} else {
			res.objects = append(res.objects, b.objects[k])
			res.last, res.lastIsPrefix = k, false
		}
	}
	return res, nil
}

type listEntry struct {
	Key               string
	LastModified      string
	ETag              string
	Size              int64
	ChecksumAlgorithm string `xml:",omitempty"`
	StorageClass      string
}

type commonPrefix struct{ Prefix string }

// listBucketResult is the answer to both versions of ListObjects; each leaves out the other's elements.
type listBucketResult struct {
	XMLName               xml.Name `xml:"ListBucketResult"`
	Xmlns                 string   `xml:"xmlns,attr"`
	Name                  string
	Prefix                string
	Marker                *string `xml:",omitempty"` // V1 only, and then always present
	NextMarker            string  `xml:",omitempty"`
	ContinuationToken     string  `xml:",omitempty"`
	NextContinuationToken string  `xml:",omitempty"`
	StartAfter            string  `xml:",omitempty"`
	KeyCount              *int    `xml:",omitempty"` // V2 only
	MaxKeys               int
	Delimiter             string `xml:",omitempty"`
	EncodingType          string `xml:",omitempty"`
	IsTruncated           bool
	Contents              []listEntry
	CommonPrefixes        []commonPrefix
}

const defaultMaxKeys = 1000

// serveList answers ListObjects and ListObjectsV2.
func (s *Store) serveList(q *request) error {
	v2 := q.op == OpListObjectsV2
	p := q.query
	lq := listQuery{prefix: p.Get("prefix"), delimiter: p.Get("delimiter"), maxKeys: defaultMaxKeys}
	if v := p.Get("max-keys"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return invalidArgument("Provided max-keys not an integer or within integer range")
		}
		lq.maxKeys = min(n, defaultMaxKeys)
	}
	urlEncoding := false
	switch e := p.Get("encoding-type"); e {
	case "":
	case "url":
		urlEncoding = true
	default:
		return invalidArgument("Invalid Encoding Method specified in Request")
	}
	enc := func(s string) string {
		if !urlEncoding {
			return s
		}
		// S3 escapes as a form does, but leaves "/" alone.
		return strings.ReplaceAll(url.QueryEscape(s), "%2F", "/")
	}

	out := listBucketResult{Xmlns: xmlns, Name: q.bucket, Prefix: enc(lq.prefix), MaxKeys: lq.maxKeys,
		Delimiter: enc(lq.delimiter)}
	if urlEncoding {
		out.EncodingType = "url"
	}
	if v2 {
		if token := p.Get("continuation-token"); p.Has("continuation-token") {
			after, isPrefix, ok := decodeToken(token)
			if !ok {
				return invalidArgument("The continuation token provided is incorrect")
			}
			lq.after = after
			if isPrefix {
				lq.skipUnder = after
			}
			out.ContinuationToken = token
		} else {
			lq.after = p.Get("start-after")
		}
		out.StartAfter = enc(p.Get("start-after"))
	} else {
		lq.after = p.Get("marker")
		// A marker that is a common prefix of this listing stands for every key under it.
		if rest, ok := strings.CutPrefix(lq.after, lq.prefix); ok && lq.delimiter != "" {
			if i := strings.Index(rest, lq.delimiter); i >= 0 && i == len(rest)-len(lq.delimiter) {
				lq.skipUnder = lq.after
			}
		}
		marker := enc(lq.after)
		out.Marker = &marker
	}

	res, err := s.list(q.bucket, lq)
	if err != nil {
		return err
	}
	out.IsTruncated = res.truncated
	for _, m := range res.objects {
		out.Contents = append(out.Contents, listEntry{Key: enc(m.Key), LastModified: xmlTime(m.LastModified),
			ETag: m.ETag, Size: m.Size, ChecksumAlgorithm: string(m.ChecksumAlgorithm), StorageClass: "STANDARD"})
	}
	for _, cp := range res.prefixes {
		out.CommonPrefixes = append(out.CommonPrefixes, commonPrefix{Prefix: enc(cp)})
	}
	if v2 {
		n := len(res.objects) + len(res.prefixes)
		out.KeyCount = &n
		if res.truncated {
			out.NextContinuationToken = encodeToken(res.last, res.lastIsPrefix)
		}
	} else if res.truncated && lq.delimiter != "" {
		// S3 sends NextMarker only with a delimiter; without one clients continue from the last key.
		out.NextMarker = enc(res.last)
	}
	writeXML(q.w, http.StatusOK, out)
	return nil
}

// A continuation token says where the next page starts: after a key ("k") or after every key under a common
// prefix ("p"). It is opaque to clients.
func encodeToken(last string, isPrefix bool) string {
	kind := "k"
	if isPrefix {
		kind = "p"
	}
	return base64.RawURLEncoding.EncodeToString([]byte(kind + last))
}

func decodeToken(token string) (after string, isPrefix, ok bool) {
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) == 0 || (b[0] != 'k' && b[0] != 'p') {
		return "", false, false
	}
	return string(b[1:]), b[0] == 'p', true
}

// serveListBuckets answers ListBuckets, with its optional prefix, max-buckets and continuation-token.
func (s *Store) serveListBuckets(q *request) error {
	p := q.query
	limit := math.MaxInt
	if v := p.Get("max-buckets"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			return invalidArgument("max-buckets must be an integer from 1 to 10000")
		}
		limit = n
	}
	after := ""
	if token := p.Get("continuation-token"); token != "" {
		b, err := base64.RawURLEncoding.DecodeString(token)
		if err != nil {
			return invalidArgument("The continuation token provided is incorrect")
		}
		after = string(b)
	}
	type bucketEntry struct {
		Name         string
		CreationDate string
		BucketRegion string
	}
	out := struct {
		XMLName xml.Name `xml:"ListAllMyBucketsResult"`
		Xmlns   string   `xml:"xmlns,attr"`
		Owner   struct {
			ID          string
			DisplayName string
		}
		Buckets           []bucketEntry `xml:"Buckets>Bucket"`
		ContinuationToken string        `xml:",omitempty"`
		Prefix            string        `xml:",omitempty"`
	}{Xmlns: xmlns, Prefix: p.Get("prefix")}
	out.Owner.ID, out.Owner.DisplayName = "fleetlab", "fleetlab"
	for _, b := range s.Buckets() {
		if b.Name <= after || !strings.HasPrefix(b.Name, out.Prefix) {
			continue
		}
		if len(out.Buckets) == limit {
			out.ContinuationToken = base64.RawURLEncoding.EncodeToString([]byte(out.Buckets[limit-1].Name))
			break
		}
		out.Buckets = append(out.Buckets, bucketEntry{Name: b.Name, CreationDate: xmlTime(b.Created), BucketRegion: "us-east-1"})
	}
	writeXML(q.w, http.StatusOK, out)
	return nil
}
