package config

import (
	"path/filepath"
	"testing"

	"sconify/runtime_shim/internal/testkit"
)

// The cross-language acceptance: sizes parse exactly as sconify.settings.parse_size does.
func TestSizeVectors(t *testing.T) {
	var cases []struct {
		Text  string `json:"text"`
		Bytes uint64 `json:"bytes"`
		Error bool   `json:"error"`
	}
	testkit.LoadJSON(t, filepath.Join(testkit.VectorDir(t, "sizes"), "cases.json"), &cases)
	if len(cases) == 0 {
		t.Fatal("no size vectors")
	}
	for _, c := range cases {
		got, err := ParseSize(c.Text)
		switch {
		case c.Error && err == nil:
			t.Errorf("ParseSize(%q) = %d, Python refuses it", c.Text, got)
		case !c.Error && (err != nil || got != c.Bytes):
			t.Errorf("ParseSize(%q) = %d, %v; Python says %d", c.Text, got, err, c.Bytes)
		}
	}
}
