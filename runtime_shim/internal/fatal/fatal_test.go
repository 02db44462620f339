package fatal

import (
	"errors"
	"fmt"
	"testing"
)

func TestLineFormat(t *testing.T) {
	err := New("reading /sconify/config.json", "file does not exist", "is this a converted image?")
	want := "[SCONIFY|FATAL] reading /sconify/config.json: file does not exist (is this a converted image?)"
	if got := Line(err); got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestLineIsOneLine(t *testing.T) {
	err := New("attestation refused", "bad\nline\r\x1b[31m\u2028x\xff", "check")
	got := Line(err)
	want := "[SCONIFY|FATAL] attestation refused: bad line  [31m x  (check)"
	if got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestWrapKeepsInnermost(t *testing.T) {
	inner := New("hashing /bin/x", "permission denied", "check the image")
	outer := Wrap("measuring", fmt.Errorf("context: %w", inner), "other")
	if outer != inner {
		t.Fatalf("Wrap replaced an inner fatal error: %v", outer)
	}
	plain := Wrap("measuring", errors.New("boom"), "check it")
	if plain.Error() != "measuring: boom (check it)" {
		t.Fatalf("got %q", plain.Error())
	}
}

func TestLineOfForeignError(t *testing.T) {
	got := Line(errors.New("boom"))
	want := "[SCONIFY|FATAL] sconify shim: boom (this is a bug in the shim; please report it)"
	if got != want {
		t.Fatalf("got %q", got)
	}
}
