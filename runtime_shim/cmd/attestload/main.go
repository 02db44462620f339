// Command attestload drives a CAS and a LAS with simulated enclaves, for the attestation load
// benchmark (benchmarks/cas_load.py); it is not part of any image.
//
// Each simulated enclave is a goroutine that attests again and again, each time exactly as a
// freshly started shim does (internal/attest): a new ephemeral P-256 key, a new TLS connection
// to the CAS enclave API pinned to the CAS key for challenge and attest, a new connection to the
// LAS for the quote binding the nonce and the key, and the JWE opened. The released
// configuration is checked, so only the right answer counts. One JSON report goes to stdout.
//
//	attestload -cas HOST:PORT -las HOST:PORT -config-id NS/SESSION/SERVICE -cas-key-hash HEX
//	           -measurement HEX -enclaves N -start UNIX_SECONDS -warmup 3s -window 20s
//	           [-session-hash HEX] [-fspf-key HEX] [-injection-files N]
//
// Attestations that start inside the window [start+warmup, start+warmup+window) are reported;
// those still running at the window's end finish and count.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"sconify/runtime_shim/internal/attest"
)

type target struct {
	cas, casHost, las, configID, keyHash, measurement string
	sessionHash, fspfKey                              string
	injectionFiles                                    int
}

// report is what the harness reads.
type report struct {
	// Latencies of the attestations that started in the window and succeeded, in seconds.
	Latencies []float64 `json:"latencies"`
	// Errors counts failed attestations; ErrorSamples holds a few distinct messages.
	Errors       int      `json:"errors"`
	ErrorSamples []string `json:"error_samples"`
	// Elapsed is seconds from the window's start until the last counted attestation ended.
	Elapsed float64 `json:"elapsed"`
	// CPU is this process's user+system CPU seconds during the window.
	CPU float64 `json:"cpu"`
}

type outcome struct {
	began time.Time
	took  time.Duration
	err   error
}

func main() {
	var t target
	flag.StringVar(&t.cas, "cas", "", "CAS enclave API host:port")
	flag.StringVar(&t.las, "las", "", "LAS host:port")
	flag.StringVar(&t.configID, "config-id", "", "namespace/session/service")
	flag.StringVar(&t.keyHash, "cas-key-hash", "", "the CAS key hash the shim pins")
	flag.StringVar(&t.measurement, "measurement", "", "the measurement to quote (hex)")
	flag.StringVar(&t.sessionHash, "session-hash", "", "expected session_hash of the released configuration")
	flag.StringVar(&t.fspfKey, "fspf-key", "", "expected fspf_key of the released configuration")
	flag.IntVar(&t.injectionFiles, "injection-files", -1, "expected number of injection files")
	enclaves := flag.Int("enclaves", 1, "simulated enclaves attesting at once")
	start := flag.Float64("start", 0, "when to start (Unix seconds; 0: now)")
	warmup := flag.Duration("warmup", 3*time.Second, "attestations before the window are not counted")
	window := flag.Duration("window", 20*time.Second, "how long new attestations are counted")
	flag.Parse()
	host, _, err := net.SplitHostPort(t.cas)
	if err != nil || t.las == "" || t.configID == "" || t.keyHash == "" || t.measurement == "" || *enclaves < 1 {
		fmt.Fprintln(os.Stderr, "attestload: -cas HOST:PORT, -las, -config-id, -cas-key-hash, -measurement and -enclaves >= 1 are needed")
		os.Exit(2)
	}
	t.casHost = host
	begin := time.Now()
	if *start > 0 {
		begin = time.Unix(0, int64(*start*1e9))
	}
	windowStart := begin.Add(*warmup)
	stop := windowStart.Add(*window)
	time.Sleep(time.Until(begin))

	results := make(chan []outcome, *enclaves)
	for i := 0; i < *enclaves; i++ {
		go enclave(t, windowStart, stop, results)
	}
	time.Sleep(time.Until(windowStart))
	cpuStart := cpuSeconds()
	var all []outcome
	for i := 0; i < *enclaves; i++ {
		all = append(all, <-results...)
	}
	rep := summarise(all, windowStart)
	rep.CPU = cpuSeconds() - cpuStart
	if err := json.NewEncoder(os.Stdout).Encode(rep); err != nil {
		fmt.Fprintln(os.Stderr, "attestload:", err)
		os.Exit(1)
	}
}

// enclave attests in a closed loop until stop; it keeps what started inside the window.
func enclave(t target, windowStart, stop time.Time, out chan<- []outcome) {
	var mine []outcome
	for {
		began := time.Now()
		if !began.Before(stop) {
			break
		}
		err := attestOnce(t)
		if !began.Before(windowStart) {
			mine = append(mine, outcome{began: began, took: time.Since(began), err: err})
		}
	}
	out <- mine
}

// attestOnce is one start of a shim: new key, new connections, the whole protocol, the check.
func attestOnce(t target) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cas, las := attest.NewCAS(t.cas, t.casHost, t.keyHash), attest.NewLAS(t.las)
	defer cas.Close()
	defer las.Close()
	nonce, err := cas.Challenge(ctx, t.configID)
	if err != nil {
		return err
	}
	key, err := attest.NewEphemeralKey()
	if err != nil {
		return err
	}
	defer key.Zero()
	quote, err := las.Quote(ctx, t.measurement, attest.ReportData(nonce, key.Thumbprint()), false)
	if err != nil {
		return err
	}
	jwe, err := cas.Attest(ctx, t.configID, nonce, quote, key)
	if err != nil {
		return err
	}
	plain, err := key.Decrypt(jwe)
	if err != nil {
		return err
	}
	return check(t, plain)
}

// check refuses a configuration that is not the session's (wrong answers must not count).
func check(t target, plain []byte) error {
	var conf struct {
		SessionHash    string            `json:"session_hash"`
		FspfKey        string            `json:"fspf_key"`
		InjectionFiles []json.RawMessage `json:"injection_files"`
	}
	if err := json.Unmarshal(plain, &conf); err != nil {
		return fmt.Errorf("the released configuration is not JSON: %w", err)
	}
	switch {
	case t.sessionHash != "" && conf.SessionHash != t.sessionHash:
		return errors.New("the released configuration is another session's")
	case t.fspfKey != "" && conf.FspfKey != t.fspfKey:
		return errors.New("the released configuration has another fspf key")
	case t.injectionFiles >= 0 && len(conf.InjectionFiles) != t.injectionFiles:
		return fmt.Errorf("the released configuration has %d injection files, not %d", len(conf.InjectionFiles), t.injectionFiles)
	}
	return nil
}

func summarise(all []outcome, windowStart time.Time) report {
	rep := report{Latencies: []float64{}, ErrorSamples: []string{}}
	seen := map[string]bool{}
	var last time.Time
	for _, o := range all {
		if end := o.began.Add(o.took); end.After(last) {
			last = end
		}
		if o.err == nil {
			rep.Latencies = append(rep.Latencies, o.took.Seconds())
			continue
		}
		rep.Errors++
		if msg := o.err.Error(); !seen[msg] && len(rep.ErrorSamples) < 5 {
			seen[msg] = true
			rep.ErrorSamples = append(rep.ErrorSamples, msg)
		}
	}
	if !last.IsZero() {
		rep.Elapsed = last.Sub(windowStart).Seconds()
	}
	return rep
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}
