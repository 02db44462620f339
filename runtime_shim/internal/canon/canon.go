// Package canon writes canonical JSON (docs/contracts.md section 1): keys sorted by code point,
// no white space, only `"`, `\` and U+0000-U+001F escaped, integers only. encoding/json cannot be
// used to produce it: it escapes <, >, & and U+2028/U+2029.
package canon

import (
	"fmt"
	"sort"
	"strconv"
)

// Object is a JSON object whose values are string, bool, int, int64, uint64, Object or []any.
type Object map[string]any

// Marshal returns the canonical JSON of obj. It panics on a value of another type: the shim
// only encodes documents it builds itself.
func Marshal(obj Object) []byte {
	return appendValue(nil, obj)
}

func appendValue(b []byte, v any) []byte {
	switch v := v.(type) {
	case Object:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		// Go compares strings bytewise; for UTF-8 that is code point order.
		sort.Strings(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = appendValue(b, v[k])
		}
		return append(b, '}')
	case []any:
		b = append(b, '[')
		for i, item := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendValue(b, item)
		}
		return append(b, ']')
	case string:
		return appendString(b, v)
	case bool:
		return strconv.AppendBool(b, v)
	case int:
		return strconv.AppendInt(b, int64(v), 10)
	case int64:
		return strconv.AppendInt(b, v, 10)
	case uint64:
		return strconv.AppendUint(b, v, 10)
	default:
		panic(fmt.Sprintf("canon: unsupported value of type %T", v))
	}
}

const hexDigits = "0123456789abcdef"

func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\b':
			b = append(b, '\\', 'b')
		case c == '\t':
			b = append(b, '\\', 't')
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\f':
			b = append(b, '\\', 'f')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
