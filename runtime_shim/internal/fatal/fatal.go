// Package fatal is the shim's one kind of failure and the one place that renders it.
//
// Every failure ends the shim with exactly one line on stderr and exit status 1
// (docs/contracts.md section 9):
//
//	[SCONIFY|FATAL] <what failed>: <why> (<what to check>)
//
// Code below the launcher returns *Error values (or plain errors that a caller wraps); only
// cmd/shim calls Exit.
package fatal

import (
	"errors"
	"io"
	"os"
	"strings"
	"unicode/utf8"
)

// Error is a failure that ends the shim before the application starts.
type Error struct {
	What  string // what failed, e.g. "reading the shim configuration /sconify/config.json"
	Why   string // the cause, e.g. "file does not exist"
	Check string // what a user should check or do next
}

// New returns an Error with a textual cause.
func New(what, why, check string) *Error {
	return &Error{What: what, Why: why, Check: check}
}

// Wrap returns an Error whose cause is err. An err that already is an *Error is returned as
// it is: the innermost step knows best what failed and what to check.
func Wrap(what string, err error, check string) *Error {
	var fe *Error
	if errors.As(err, &fe) {
		return fe
	}
	return &Error{What: what, Why: err.Error(), Check: check}
}

// Error renders "<what>: <why> (<check>)".
func (e *Error) Error() string {
	return e.What + ": " + e.Why + " (" + e.Check + ")"
}

// Line renders err as the single stderr line of a fatal failure, without the newline.
// Errors that are not *Error are reported as internal failures.
func Line(err error) string {
	var fe *Error
	if !errors.As(err, &fe) {
		fe = &Error{What: "sconify shim", Why: err.Error(), Check: "this is a bug in the shim; please report it"}
	}
	return "[SCONIFY|FATAL] " + OneLine(fe.Error())
}

// Report writes the line for err, and a newline, to w.
func Report(w io.Writer, err error) {
	_, _ = io.WriteString(w, Line(err)+"\n")
}

// Exit reports err on stderr and ends the process with status 1.
func Exit(err error) {
	Report(os.Stderr, err)
	os.Exit(1)
}

// OneLine replaces line breaks, other control characters and invalid UTF-8 by spaces, so that a
// message quoting a CAS answer or a file name cannot forge further log lines or send terminal
// escapes.
func OneLine(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r < 0x20, r == 0x7f, r >= 0x80 && r < 0xa0, r == 0x2028, r == 0x2029, r == utf8.RuneError:
			return ' '
		}
		return r
	}, s)
}
