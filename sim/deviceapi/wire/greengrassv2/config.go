package greengrassv2

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// ConfigurationUpdate is a deployment's configurationUpdate for one component: JSON pointers to reset, then a
// JSON object to merge.
type ConfigurationUpdate struct {
	// Merge is a JSON object, as a string (the API's form); "" merges nothing.
	Merge string `json:"merge,omitempty"`
	// Reset are JSON pointers (RFC 6901) to reset to their defaults; "" resets the whole configuration.
	Reset []string `json:"reset,omitempty"`
}

// SkippedReset is a reset pointer the algorithm did not apply, and why.
type SkippedReset struct {
	Pointer string
	Reason  string
}

// Configure returns the configuration a component runs with after a deployment, by the nucleus's algorithm
// (KernelConfigResolver.resolveConfigurationToApply):
//
//  1. start from current, the component's running configuration (nil on first install);
//  2. apply each reset pointer in order: "" replaces the configuration with {} and ends the resets; a pointer
//     through an array element is not supported and is skipped (reported in skipped, as the nucleus logs it);
//     any other pointer removes the node it names, subtree or leaf (a pointer that names nothing does nothing);
//  3. merge defaults under what is there: a default never replaces an existing value, so a reset key falls back
//     to its default;
//  4. merge update.Merge over the result: objects merge recursively, scalars, arrays and nulls replace.
//
// Keys are case-insensitive throughout, as in the nucleus's configuration store: "/Port" resets "port", and a
// merged key "PORT" replaces "port" (the existing spelling stays). Configure changes none of its arguments. The
// error is a merge document that is not a JSON object.
func Configure(current, defaults map[string]any, update ConfigurationUpdate) (
	config map[string]any, skipped []SkippedReset, err error) {
	var merge map[string]any
	if strings.TrimSpace(update.Merge) != "" {
		dec := json.NewDecoder(strings.NewReader(update.Merge))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, nil, fmt.Errorf("configurationUpdate merge is not JSON: %w", err)
		}
		if dec.More() {
			return nil, nil, errors.New("configurationUpdate merge has data after its JSON object")
		}
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, nil, fmt.Errorf("configurationUpdate merge is a JSON %s, want an object", jsonType(v))
		}
		merge = obj
	}
	config = deepCopyMap(current)
	for _, p := range update.Reset {
		if p == "" {
			config = map[string]any{}
			break
		}
		if reason := resetPointer(config, p); reason != "" {
			skipped = append(skipped, SkippedReset{Pointer: p, Reason: reason})
		}
	}
	mergeUnder(config, defaults)
	mergeOver(config, merge)
	return config, skipped, nil
}

// resetPointer removes the node p names from config; it returns why it did not when it could not.
func resetPointer(config map[string]any, p string) string {
	if !strings.HasPrefix(p, "/") {
		return "a JSON pointer starts with '/'"
	}
	tokens := strings.Split(p[1:], "/")
	for i, t := range tokens {
		tokens[i] = strings.ReplaceAll(strings.ReplaceAll(t, "~1", "/"), "~0", "~")
	}
	node := config
	for i, t := range tokens {
		key, ok := foldKey(node, t)
		if !ok {
			return "" // nothing there: nothing to reset
		}
		if i == len(tokens)-1 {
			delete(node, key)
			return ""
		}
		switch child := node[key].(type) {
		case map[string]any:
			node = child
		case []any:
			return "the pointer targets an array element, which reset does not support"
		default:
			return "" // a path through a leaf names nothing
		}
	}
	return ""
}

// mergeUnder adds what defaults has and dst lacks, recursively; it never replaces a value of dst.
func mergeUnder(dst, defaults map[string]any) {
	for _, k := range sortedKeys(defaults) {
		dv := defaults[k]
		key, ok := foldKey(dst, k)
		if !ok {
			dst[k] = deepCopy(dv)
			continue
		}
		if dm, isMap := dv.(map[string]any); isMap {
			if cm, ok := dst[key].(map[string]any); ok {
				mergeUnder(cm, dm)
			}
		}
	}
}

// mergeOver merges src into dst: objects recursively, anything else replaces.
func mergeOver(dst, src map[string]any) {
	for _, k := range sortedKeys(src) {
		sv := src[k]
		key, ok := foldKey(dst, k)
		if !ok {
			dst[k] = deepCopy(sv)
			continue
		}
		sm, srcMap := sv.(map[string]any)
		dm, dstMap := dst[key].(map[string]any)
		if srcMap && dstMap {
			mergeOver(dm, sm)
			continue
		}
		dst[key] = deepCopy(sv)
	}
}

// foldKey finds the key of m equal to k ignoring case: k itself first, else the first in sorted order.
func foldKey(m map[string]any, k string) (string, bool) {
	if _, ok := m[k]; ok {
		return k, true
	}
	keys := make([]string, 0, len(m))
	for key := range m {
		if strings.EqualFold(key, k) {
			keys = append(keys, key)
		}
	}
	if len(keys) == 0 {
		return "", false
	}
	sort.Strings(keys)
	return keys[0], true
}

func deepCopyMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = deepCopy(v)
	}
	return out
}

func deepCopy(v any) any {
	switch t := v.(type) {
	case map[string]any:
		return deepCopyMap(t)
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = deepCopy(e)
		}
		return out
	}
	return v
}

func jsonType(v any) string {
	switch v.(type) {
	case []any:
		return "array"
	case string:
		return "string"
	case bool:
		return "boolean"
	case nil:
		return "null"
	}
	return "number"
}

// ConfigJSON encodes a configuration with sorted keys, for comparing configurations and storing them.
func ConfigJSON(config map[string]any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(config); err != nil {
		return nil
	}
	return bytes.TrimSpace(buf.Bytes())
}
