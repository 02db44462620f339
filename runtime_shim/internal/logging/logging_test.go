package logging

import (
	"bytes"
	"testing"
)

func TestParseLevel(t *testing.T) {
	cases := map[string]Level{
		"FATAL": Fatal, "error": Error, "Warning": Warning, "warn": Warning, "INFO": Info,
		"debug": Debug, "trace": Trace, "0": Fatal, "3": Info, "4": Debug, "5": Trace, "7": Trace,
	}
	for in, want := range cases {
		got, err := ParseLevel(in)
		if err != nil || got != want {
			t.Errorf("ParseLevel(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "8", "-1", "verbose", "10"} {
		if _, err := ParseLevel(bad); err == nil {
			t.Errorf("ParseLevel(%q) accepted", bad)
		}
	}
}

func TestFiltering(t *testing.T) {
	var buf bytes.Buffer
	lg := New(&buf, Warning)
	lg.Info("hidden")
	lg.Warn("shown %d", 1)
	lg.Always(Info, "forced\nline")
	want := "[SCONIFY|WARN] shown 1\n[SCONIFY|INFO] forced line\n"
	if buf.String() != want {
		t.Fatalf("got %q, want %q", buf.String(), want)
	}
}
