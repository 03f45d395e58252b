package awsapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/fleetlab/fleetlab/sim/clock"
	"github.com/fleetlab/fleetlab/sim/store"
)

// Records is the part of a dialect's store that every dialect keeps the same way: record keys from a sequence
// (zero-padded, so iterating a bucket is creation order), an index that finds a record by its ARN and by other
// entries the dialect chooses ("robot/<name>", "job/<id>"), the tags of each ARN, the stamps that keep ARNs
// unique, and the idempotency tokens. The dialect keeps its own record kinds in buckets of its own and uses
// Records to name, find, tag and remove them.
//
// Its buckets are named "<name>.index", "<name>.tags", "<name>.tokens", "<name>.meta" and "<name>.seq" after the
// dialect's name. Every method works inside the caller's transaction, so a record, its index entries and its
// tags are written together or not at all.
type Records struct {
	name, region, account string
	buckets               RecordBuckets
}

// RecordBuckets are the store buckets a Records keeps.
type RecordBuckets struct {
	Index  string // "arn/<ARN>" and the dialect's entries → "kind:key"
	Tags   string // ARN → JSON map of tags
	Tokens string // idempotency tokens (Tokens)
	Meta   string // "stamp" → the last ARN stamp issued (epoch ms)
	Seq    string // NextSequence only
}

// NewRecords returns the shared records of the dialect name (also the service field of its ARNs) in region and
// account.
func NewRecords(name, region, account string) Records {
	return Records{name: name, region: region, account: account, buckets: RecordBuckets{
		Index: name + ".index", Tags: name + ".tags", Tokens: name + ".tokens", Meta: name + ".meta",
		Seq: name + ".seq",
	}}
}

// Buckets returns the names of the buckets r keeps.
func (r Records) Buckets() RecordBuckets { return r.buckets }

// Tokens returns the dialect's idempotency tokens, remembered for ttl (zero: until forgotten).
func (r Records) Tokens(ttl time.Duration, c clock.Clock) Tokens {
	return Tokens{Bucket: r.buckets.Tokens, TTL: ttl, Clock: c}
}

// ARN returns the ARN of resource in the dialect's service, region and account.
func (r Records) ARN(resource string) string {
	return ARN{Partition: "aws", Service: r.name, Region: r.region, Account: r.account, Resource: resource}.String()
}

// NextKey returns a fresh record key and its sequence number. Keys are unique across restarts because the
// sequence is in the store.
func (r Records) NextKey(tx store.Tx) (string, uint64, error) {
	n, err := tx.NextSequence(r.buckets.Seq)
	if err != nil {
		return "", 0, fmt.Errorf("next sequence: %w", err)
	}
	return fmt.Sprintf("%016d", n), n, nil
}

// Stamp returns the epoch-millisecond suffix of a new ARN: the clock's time, moved past the last stamp issued so
// two resources of one name never share an ARN, even on a fake clock that stands still.
func (r Records) Stamp(tx store.Tx, now time.Time) (int64, error) {
	ms := now.UnixMilli()
	data, err := tx.Get(r.buckets.Meta, "stamp")
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return 0, fmt.Errorf("read stamp: %w", err)
	}
	if err == nil {
		last, perr := strconv.ParseInt(string(data), 10, 64)
		if perr == nil && last >= ms {
			ms = last + 1
		}
	}
	if err := tx.Put(r.buckets.Meta, "stamp", []byte(strconv.FormatInt(ms, 10))); err != nil {
		return 0, fmt.Errorf("write stamp: %w", err)
	}
	return ms, nil
}

// NewResource allocates what a new named resource is known by: a record key, and the ARN
// <resource>/<name>/<stamp>.
func (r Records) NewResource(tx store.Tx, now time.Time, resource, name string) (key, arn string, err error) {
	key, _, err = r.NextKey(tx)
	if err != nil {
		return "", "", err
	}
	ms, err := r.Stamp(tx, now)
	if err != nil {
		return "", "", err
	}
	return key, r.ARN(fmt.Sprintf("%s/%s/%d", resource, name, ms)), nil
}

// Lookup resolves an index entry to the kind and key of its record.
func (r Records) Lookup(tx store.Tx, entry string) (kind, key string, found bool, err error) {
	data, err := tx.Get(r.buckets.Index, entry)
	if errors.Is(err, store.ErrNotFound) {
		return "", "", false, nil
	}
	if err != nil {
		return "", "", false, fmt.Errorf("read index: %w", err)
	}
	kind, key, _ = strings.Cut(string(data), ":")
	return kind, key, true, nil
}

// Index points entry at the record of kind at key.
func (r Records) Index(tx store.Tx, entry, kind, key string) error {
	if err := tx.Put(r.buckets.Index, entry, []byte(kind+":"+key)); err != nil {
		return fmt.Errorf("write index: %w", err)
	}
	return nil
}

// Unindex deletes index entries.
func (r Records) Unindex(tx store.Tx, entries ...string) error {
	for _, e := range entries {
		if err := tx.Delete(r.buckets.Index, e); err != nil {
			return fmt.Errorf("delete index: %w", err)
		}
	}
	return nil
}

// Insert writes a new resource of kind: its record rec at key in the dialect's bucket, the index entry of its ARN
// and the other entries given, and its tags. Remove undoes it.
func (r Records) Insert(tx store.Tx, bucket, kind, key, arn string, rec any, tags map[string]string,
	entries ...string) error {
	if err := PutJSON(tx, bucket, key, rec); err != nil {
		return err
	}
	for _, e := range append([]string{"arn/" + arn}, entries...) {
		if err := r.Index(tx, e, kind, key); err != nil {
			return err
		}
	}
	return r.PutTags(tx, arn, tags)
}

// Remove deletes what Insert wrote: the record at key in bucket, the resource's tags, and its index entries, that
// of its ARN and the others given.
func (r Records) Remove(tx store.Tx, bucket, key, arn string, entries ...string) error {
	if err := tx.Delete(bucket, key); err != nil {
		return err
	}
	if err := r.PutTags(tx, arn, nil); err != nil {
		return err
	}
	return r.Unindex(tx, append([]string{"arn/" + arn}, entries...)...)
}

// FindByARN resolves an ARN of the dialect's service, region and account to the kind and key of its record;
// found is false for any other ARN.
func (r Records) FindByARN(tx store.Tx, arn string) (kind, key string, found bool, err error) {
	a, perr := ParseARN(arn)
	if perr != nil || a.Service != r.name || a.Region != r.region || a.Account != r.account {
		return "", "", false, nil
	}
	return r.Lookup(tx, "arn/"+arn)
}

// Tags returns the tags of a resource ARN (an empty map when it has none).
func (r Records) Tags(tx store.Tx, arn string) (map[string]string, error) {
	tags := map[string]string{}
	if _, err := GetJSON(tx, r.buckets.Tags, arn, &tags); err != nil {
		return nil, err
	}
	return tags, nil
}

// PutTags replaces the tags of a resource ARN; none deletes them.
func (r Records) PutTags(tx store.Tx, arn string, tags map[string]string) error {
	if len(tags) == 0 {
		return tx.Delete(r.buckets.Tags, arn)
	}
	return PutJSON(tx, r.buckets.Tags, arn, tags)
}

// LoadByARN finds the record of a resource of kind, kept in bucket, by its ARN: nil when the ARN names no
// resource of the dialect's account and region, or one of another kind.
func LoadByARN[T any](r Records, tx store.Tx, arn, kind, bucket string) (*T, error) {
	k, key, ok, err := r.FindByARN(tx, arn)
	if err != nil || !ok || k != kind {
		return nil, err
	}
	return LoadKey[T](tx, bucket, key)
}

// LoadKey reads the record at key in bucket; nil when there is none.
func LoadKey[T any](tx store.Tx, bucket, key string) (*T, error) {
	var rec T
	if ok, err := GetJSON(tx, bucket, key, &rec); err != nil || !ok {
		return nil, err
	}
	return &rec, nil
}

// GetJSON reads and decodes one record; found is false when the key is absent.
func GetJSON(tx store.Tx, bucket, key string, v any) (found bool, err error) {
	data, err := tx.Get(bucket, key)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read %s/%s: %w", bucket, key, err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return false, fmt.Errorf("decode %s/%s: %w", bucket, key, err)
	}
	return true, nil
}

// PutJSON encodes and writes one record.
func PutJSON(tx store.Tx, bucket, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s/%s: %w", bucket, key, err)
	}
	if err := tx.Put(bucket, key, data); err != nil {
		return fmt.Errorf("write %s/%s: %w", bucket, key, err)
	}
	return nil
}

// Each decodes every record of a bucket in key order.
func Each[T any](tx store.Tx, bucket string, fn func(*T) error) error {
	return tx.ForEach(bucket, "", func(k string, v []byte) error {
		var rec T
		if err := json.Unmarshal(v, &rec); err != nil {
			return fmt.Errorf("decode %s/%s: %w", bucket, k, err)
		}
		return fn(&rec)
	})
}
