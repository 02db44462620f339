// Package logging writes the shim's informational lines ("[SCONIFY|WARN] ...") to stderr,
// filtered by SCONE_LOG.
package logging

import (
	"fmt"
	"io"
	"strings"

	"sconify/runtime_shim/internal/fatal"
)

// Level is a SCONE_LOG verbosity; a line is written when its level is at most the logger's.
type Level int

// The SCONE_LOG levels, least verbose first.
const (
	Fatal Level = iota
	Error
	Warning
	Info
	Debug
	Trace
)

// DefaultLevel applies when SCONE_LOG is unset.
const DefaultLevel = Warning

var names = map[string]Level{
	"FATAL": Fatal, "ERROR": Error, "WARNING": Warning, "WARN": Warning,
	"INFO": Info, "DEBUG": Debug, "TRACE": Trace,
}

var tags = map[Level]string{
	Fatal: "FATAL", Error: "ERROR", Warning: "WARN", Info: "INFO", Debug: "DEBUG", Trace: "TRACE",
}

// ParseLevel reads a SCONE_LOG value: a level name (any case) or a digit 0-7, where 0 is
// FATAL, 4 DEBUG and 5-7 TRACE (SCONE's examples use 7 for "everything").
func ParseLevel(s string) (Level, error) {
	if l, ok := names[strings.ToUpper(s)]; ok {
		return l, nil
	}
	if len(s) == 1 && s[0] >= '0' && s[0] <= '7' {
		l := Level(s[0] - '0')
		if l > Trace {
			l = Trace
		}
		return l, nil
	}
	return 0, fmt.Errorf("%q is not a log level", s)
}

// Logger writes tagged single lines.
type Logger struct {
	w     io.Writer
	level Level
}

// New returns a logger writing to w the lines up to level.
func New(w io.Writer, level Level) *Logger {
	return &Logger{w: w, level: level}
}

// Enabled reports whether lines of level l are written.
func (lg *Logger) Enabled(l Level) bool { return l <= lg.level }

// Log writes one line at level l when that level is enabled.
func (lg *Logger) Log(l Level, format string, args ...any) {
	if lg.Enabled(l) {
		lg.Always(l, format, args...)
	}
}

// Always writes one line tagged with level l whatever SCONE_LOG says (the startup notice, the
// SCONE_VERSION report).
func (lg *Logger) Always(l Level, format string, args ...any) {
	line := "[SCONIFY|" + tags[l] + "] " + fatal.OneLine(fmt.Sprintf(format, args...)) + "\n"
	_, _ = io.WriteString(lg.w, line)
}

// Warn logs at Warning.
func (lg *Logger) Warn(format string, args ...any) { lg.Log(Warning, format, args...) }

// Info logs at Info.
func (lg *Logger) Info(format string, args ...any) { lg.Log(Info, format, args...) }

// Debug logs at Debug.
func (lg *Logger) Debug(format string, args ...any) { lg.Log(Debug, format, args...) }
