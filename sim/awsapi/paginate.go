package awsapi

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
)

// ErrBadToken is returned for a pagination token that this service did not issue for the same listing.
var ErrBadToken = errors.New("invalid pagination token")

// pageToken is what a nextToken carries: the key of the last item returned and a digest of the listing it
// belongs to, so a token replayed against another operation or other filters is refused.
type pageToken struct {
	Scope string `json:"s"`
	After string `json:"a"`
}

// scopeDigest is a short digest of a listing's identity (operation and filters).
func scopeDigest(scope string) string {
	sum := sha256.Sum256([]byte(scope))
	return hex.EncodeToString(sum[:6])
}

// EncodeToken returns an opaque nextToken resuming after the item with key after, in the listing named by scope
// (the operation and its filters, in any stable spelling). The token uses the URL-safe base64 alphabet without
// padding, which every model's PaginationToken pattern admits.
func EncodeToken(scope, after string) string {
	data, _ := json.Marshal(pageToken{Scope: scopeDigest(scope), After: after})
	return base64.RawURLEncoding.EncodeToString(data)
}

// DecodeToken returns the key a token resumes after; an empty token is the start. A token of another listing, or
// one that does not decode, is ErrBadToken.
func DecodeToken(scope, token string) (string, error) {
	if token == "" {
		return "", nil
	}
	data, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return "", ErrBadToken
	}
	var t pageToken
	if err := json.Unmarshal(data, &t); err != nil || t.Scope != scopeDigest(scope) || t.After == "" {
		return "", ErrBadToken
	}
	return t.After, nil
}

// Page returns up to limit items of a listing that follow the position token names, and the token for the next
// page ("" when nothing follows). items must be in ascending order of key, with unique keys; resuming by key
// rather than by offset keeps pages right when items are added or removed between calls.
func Page[T any](items []T, key func(T) string, scope, token string, limit int) ([]T, string, error) {
	after, err := DecodeToken(scope, token)
	if err != nil {
		return nil, "", err
	}
	start := 0
	if after != "" {
		for start < len(items) && key(items[start]) <= after {
			start++
		}
	}
	if limit <= 0 {
		limit = len(items)
	}
	end := min(start+limit, len(items))
	page := items[start:end]
	next := ""
	if end < len(items) && end > start {
		next = EncodeToken(scope, key(items[end-1]))
	}
	return page, next, nil
}
