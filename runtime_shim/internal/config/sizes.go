package config

import (
	"fmt"
	"strings"
	"unicode"
)

// SCONE's ranges and defaults (docs/contracts.md section 5).
const (
	HeapMin      = 8 << 20
	HeapMax      = 60 << 30
	StackMin     = 32 << 10
	StackMax     = 8 << 20
	DefaultHeap  = 64 << 20
	DefaultStack = 64 << 10
)

// ParseSize reads a SCONE size: surrounding white space, then 1 to 20 decimal digits and an
// optional k, K, m, M, g or G (powers of 1024). It follows sconify.settings.parse_size; a value
// beyond 2^64-1 bytes is an error here where Python fails its range check.
func ParseSize(text string) (uint64, error) {
	s := strings.TrimFunc(text, isPythonSpace)
	mult := uint64(1)
	if n := len(s); n > 0 {
		switch s[n-1] {
		case 'k', 'K':
			mult = 1 << 10
		case 'm', 'M':
			mult = 1 << 20
		case 'g', 'G':
			mult = 1 << 30
		}
		if mult != 1 {
			s = s[:n-1]
		}
	}
	if len(s) == 0 || len(s) > 20 {
		return 0, fmt.Errorf("%q is not a size (a whole number with an optional K, M or G)", text)
	}
	var v uint64
	tooLarge := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%q is not a size (a whole number with an optional K, M or G)", text)
		}
		d := uint64(c - '0')
		tooLarge = tooLarge || v > (^uint64(0)-d)/10
		v = v*10 + d
	}
	if tooLarge || v > ^uint64(0)/mult {
		return 0, fmt.Errorf("%q is too large a size", text)
	}
	return v * mult, nil
}

// isPythonSpace is str.strip's notion of white space: Go's, plus the separators U+001C-U+001F.
func isPythonSpace(r rune) bool {
	return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
}

// ParseSizeIn parses a size and checks that it lies in [min, max].
func ParseSizeIn(text string, min, max uint64) (uint64, error) {
	v, err := ParseSize(text)
	if err != nil {
		return 0, err
	}
	if v < min || v > max {
		return 0, fmt.Errorf("%q is outside SCONE's range [%d, %d] bytes", text, min, max)
	}
	return v, nil
}
