package attest

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"sconify/runtime_shim/internal/fatal"
	"sconify/runtime_shim/internal/logging"
	"sconify/runtime_shim/internal/testkit"
)

const measurement = "1111111111111111111111111111111111111111111111111111111111111111"

func services(t *testing.T) (*testkit.LAS, *testkit.CAS) {
	las := testkit.NewLAS(t)
	cas := testkit.NewCAS(t, las, "ns/session/service", []byte(`{"pwd":"/"}`), measurement)
	return las, cas
}

func params(las *testkit.LAS, cas *testkit.CAS, log *bytes.Buffer) Params {
	return Params{CASAddr: cas.Addr(), LASAddr: las.Addr(), ConfigID: "ns/session/service",
		CASKeyHash: cas.KeyHash, Measurement: measurement, Debug: true, Timeout: 10 * time.Second,
		Log: logging.New(log, logging.Trace)}
}

func TestRunSucceeds(t *testing.T) {
	las, cas := services(t)
	var log bytes.Buffer
	plain, err := Run(context.Background(), params(las, cas, &log))
	if err != nil || string(plain) != `{"pwd":"/"}` {
		t.Fatalf("%q %v", plain, err)
	}
}

func TestRunRetriesUnavailableServices(t *testing.T) {
	las, cas := services(t)
	cas.FailFirst(3)
	var log bytes.Buffer
	if _, err := Run(context.Background(), params(las, cas, &log)); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(log.String(), "retrying"); n != 3 {
		t.Fatalf("%d retries logged:\n%s", n, log.String())
	}
}

func TestRunRefusalIsFinal(t *testing.T) {
	las, cas := services(t)
	p := params(las, cas, &bytes.Buffer{})
	p.Measurement = strings.Repeat("2", 64)
	_, err := Run(context.Background(), p)
	line := fatal.Line(err)
	for _, want := range []string{`refused by the CAS`, `check "mrenclave" failed`, "SCONE_HASH=1"} {
		if !strings.Contains(line, want) {
			t.Errorf("%q lacks %q", line, want)
		}
	}
	p = params(las, cas, &bytes.Buffer{})
	p.ConfigID = "ns/other/service"
	if _, err := Run(context.Background(), p); !strings.Contains(fatal.Line(err), `check "session" failed`) {
		t.Errorf("unknown session: %v", err)
	}
	cas.SetSimulate(false)
	if _, err := Run(context.Background(), params(las, cas, &bytes.Buffer{})); !strings.Contains(fatal.Line(err), "--allow-simulation") {
		t.Errorf("simulation not tolerated: %v", err)
	}
}

func TestRunRefusesAnotherCASKey(t *testing.T) {
	las, cas := services(t)
	p := params(las, cas, &bytes.Buffer{})
	p.CASKeyHash = strings.Repeat("0", 64)
	_, err := Run(context.Background(), p)
	var fe *fatal.Error
	if !errors.As(err, &fe) || !strings.Contains(fe.Why, "not to the cas_key_hash the image pins") {
		t.Fatalf("got %v", err)
	}
	if cas.Attested() != 0 {
		t.Fatal("attested through an unpinned CAS")
	}
}

func TestRunGivesUp(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	las, cas := services(t)
	p := params(las, cas, &bytes.Buffer{})
	p.CASAddr = dead
	p.Timeout = time.Second
	_, err = Run(context.Background(), p)
	line := fatal.Line(err)
	if !strings.Contains(line, "gave up after 1s") || !strings.Contains(line, "cannot reach the CAS") {
		t.Fatalf("got %s", line)
	}
}

func TestRunValidatesAddresses(t *testing.T) {
	las, cas := services(t)
	for name, mutate := range map[string]func(*Params){
		"SCONE_CAS_ADDR":  func(p *Params) { p.CASAddr = "" },
		"SCONE_LAS_ADDR":  func(p *Params) { p.LASAddr = "host:notaport" },
		"SCONE_CONFIG_ID": func(p *Params) { p.ConfigID = "" },
	} {
		p := params(las, cas, &bytes.Buffer{})
		mutate(&p)
		if _, err := Run(context.Background(), p); !strings.Contains(fatal.Line(err), name) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestHostPort(t *testing.T) {
	ok := map[string]string{
		"cas": "cas:18765", "cas:1": "cas:1", "127.0.0.1": "127.0.0.1:18765", "::1": "[::1]:18765",
		"[::1]:9": "[::1]:9", "[::1]": "",
	}
	for in, want := range ok {
		got, err := HostPort(in, DefaultCASPort)
		if want == "" {
			if err == nil {
				t.Errorf("HostPort(%q) = %q, accepted", in, got)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("HostPort(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", ":80", "cas:0", "cas:65536", "cas:x", "a:b:c"} {
		if got, err := HostPort(bad, 1); err == nil {
			t.Errorf("HostPort(%q) = %q, accepted", bad, got)
		}
	}
}
