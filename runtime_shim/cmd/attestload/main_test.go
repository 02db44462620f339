package main

import (
	"net"
	"strings"
	"testing"
	"time"

	"sconify/runtime_shim/internal/testkit"
)

const measurement = "2222222222222222222222222222222222222222222222222222222222222222"

func targetFor(t *testing.T, config string) (target, *testkit.CAS) {
	las := testkit.NewLAS(t)
	cas := testkit.NewCAS(t, las, "ns/session/service", []byte(config), measurement)
	host, _, _ := net.SplitHostPort(cas.Addr())
	return target{cas: cas.Addr(), casHost: host, las: las.Addr(), configID: "ns/session/service",
		keyHash: cas.KeyHash, measurement: measurement, injectionFiles: -1}, cas
}

func TestAttestOnceChecksTheReleasedConfiguration(t *testing.T) {
	tg, cas := targetFor(t, `{"session_hash":"abc","fspf_key":"k","injection_files":[{},{}]}`)
	tg.sessionHash, tg.fspfKey, tg.injectionFiles = "abc", "k", 2
	if err := attestOnce(tg); err != nil {
		t.Fatal(err)
	}
	tg.fspfKey = "other"
	if err := attestOnce(tg); err == nil || !strings.Contains(err.Error(), "fspf key") {
		t.Fatalf("a wrong configuration counted: %v", err)
	}
	if cas.Attested() != 2 {
		t.Fatalf("attested %d times, want 2", cas.Attested())
	}
}

func TestEnclavesCountOnlyTheWindow(t *testing.T) {
	tg, _ := targetFor(t, `{}`)
	results := make(chan []outcome, 2)
	windowStart := time.Now().Add(50 * time.Millisecond)
	stop := windowStart.Add(150 * time.Millisecond)
	go enclave(tg, windowStart, stop, results)
	go enclave(tg, windowStart, stop, results)
	all := append(<-results, <-results...)
	rep := summarise(all, windowStart)
	if len(rep.Latencies) == 0 || rep.Errors != 0 {
		t.Fatalf("%d latencies, %d errors: %v", len(rep.Latencies), rep.Errors, rep.ErrorSamples)
	}
	for _, o := range all {
		if o.began.Before(windowStart) || !o.began.Before(stop) {
			t.Fatalf("an attestation started at %v was counted (window %v to %v)", o.began, windowStart, stop)
		}
	}
	if rep.Elapsed < 0.15 {
		t.Fatalf("elapsed %.3f s ends before the window", rep.Elapsed)
	}
}
