package attest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"sconify/runtime_shim/internal/fatal"
	"sconify/runtime_shim/internal/logging"
)

// Params is what one attestation needs.
type Params struct {
	CASAddr     string // SCONE_CAS_ADDR, host[:port]
	LASAddr     string // SCONE_LAS_ADDR, host[:port]
	ConfigID    string // SCONE_CONFIG_ID
	CASKeyHash  string // config.json cas_key_hash
	Measurement string // hex
	Debug       bool   // config.json debug, forwarded to the LAS
	Timeout     time.Duration
	Log         *logging.Logger
}

const (
	firstBackoff = 100 * time.Millisecond
	maxBackoff   = 2 * time.Second
)

// Run attests and returns the decrypted session configuration (JSON). Unreachable or failing
// services are retried with exponential backoff, a whole new challenge each time (a nonce is
// consumed by every attest attempt); the whole run gives up after p.Timeout. Refusals, a CAS
// key that is not the pinned one and protocol errors end it at once. Errors are *fatal.Error.
func Run(ctx context.Context, p Params) ([]byte, error) {
	cas, err := HostPort(p.CASAddr, DefaultCASPort)
	if err != nil {
		return nil, fatal.New("reading SCONE_CAS_ADDR", err.Error(), "set SCONE_CAS_ADDR to the host[:port] of the CAS enclave API")
	}
	las, err := HostPort(p.LASAddr, DefaultLASPort)
	if err != nil {
		return nil, fatal.New("reading SCONE_LAS_ADDR", err.Error(), "set SCONE_LAS_ADDR to the host[:port] of the LAS")
	}
	if p.ConfigID == "" {
		return nil, fatal.New("reading SCONE_CONFIG_ID", "no config id given", "set SCONE_CONFIG_ID to <namespace>/<session>/<service>")
	}
	casHost, _, _ := net.SplitHostPort(cas)
	a := &attempt{
		p: p, casAddr: cas, lasAddr: las,
		cas: NewCAS(cas, casHost, p.CASKeyHash), las: NewLAS(las),
	}
	ctx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	backoff := firstBackoff
	for n := 1; ; n++ {
		plain, err := a.once(ctx)
		if err == nil {
			return plain, nil
		}
		var tr *transient
		if !errors.As(err, &tr) {
			return nil, a.final(err)
		}
		p.Log.Debug("attestation attempt %d failed, retrying: %v", n, err)
		select {
		case <-ctx.Done():
			return nil, a.gaveUp(err)
		case <-time.After(backoff):
		}
		if backoff *= 2; backoff > maxBackoff {
			backoff = maxBackoff
		}
	}
}

type attempt struct {
	p                Params
	casAddr, lasAddr string
	cas              *CAS
	las              *LAS
}

// once runs challenge, quote and attest with a fresh ephemeral key.
func (a *attempt) once(ctx context.Context) ([]byte, error) {
	nonce, err := a.cas.Challenge(ctx, a.p.ConfigID)
	if err != nil {
		return nil, err
	}
	key, err := NewEphemeralKey()
	if err != nil {
		return nil, err
	}
	defer key.Zero()
	quote, err := a.las.Quote(ctx, a.p.Measurement, ReportData(nonce, key.Thumbprint()), a.p.Debug)
	if err != nil {
		return nil, err
	}
	jwe, err := a.cas.Attest(ctx, a.p.ConfigID, nonce, quote, key)
	if err != nil {
		return nil, err
	}
	plain, err := key.Decrypt(jwe)
	if err != nil {
		return nil, fatal.New("decrypting the configuration from the CAS at "+a.casAddr, err.Error(),
			"the CAS and this shim disagree on the JWE format; use matching sconify versions")
	}
	return plain, nil
}

func (a *attempt) gaveUp(last error) error {
	return fatal.New("attestation", fmt.Sprintf("gave up after %s; last error: %v", a.p.Timeout, last),
		fmt.Sprintf("check that the CAS at %s and the LAS at %s are running and reachable from the container: "+
			"SCONE_CAS_ADDR and SCONE_LAS_ADDR name them, a container needs --network host to reach loopback, "+
			"SCONIFY_ATTEST_TIMEOUT sets the time limit", a.casAddr, a.lasAddr))
}

func (a *attempt) final(err error) error {
	var ref *Refusal
	var pin *PinError
	switch {
	case errors.As(err, &ref) && ref.Service == "CAS":
		return fatal.New("attestation refused by the CAS at "+a.casAddr,
			fmt.Sprintf("check %q failed: %s", ref.Check, ref.Message), casHint(ref.Check, a.p.Measurement))
	case errors.As(err, &ref):
		return fatal.New("quote refused by the LAS at "+a.lasAddr,
			fmt.Sprintf("check %q failed: %s", ref.Check, ref.Message),
			"check that SCONE_LAS_ADDR points to a sconify LAS of the same version")
	case errors.As(err, &pin):
		return fatal.New("connecting to the CAS at "+a.casAddr, pin.Error(),
			"SCONE_CAS_ADDR must name the CAS the image was converted for; a CAS with a new key needs a re-converted image")
	}
	return fatal.Wrap("attestation with the CAS at "+a.casAddr+" and the LAS at "+a.lasAddr, err,
		"use a CAS and LAS of the same sconify version as the image")
}

// casHint says what to do about each check the CAS names (contracts section 7.3).
func casHint(check, measurement string) string {
	switch check {
	case "session":
		return "SCONE_CONFIG_ID names no session on this CAS; check it and that the session was uploaded"
	case "service":
		return "the session has no such service; check the last part of SCONE_CONFIG_ID"
	case "nonce":
		return "the challenge expired or was used twice; retry, and check the clocks of CAS and host"
	case "qe_key":
		return "the LAS's key must be listed in the session's security.attestation.trusted_scone_qe_pubkeys"
	case "signature", "quote":
		return "the LAS produced a quote the CAS cannot verify; use a LAS of the same sconify version"
	case "report_data":
		return "the quote does not bind this shim's key; check that SCONE_LAS_ADDR points to a sconify LAS"
	case "mrenclave":
		return "the measurement " + measurement + " is not among the service's mrenclaves; compare with SCONE_HASH=1 and " +
			"keep SCONE_HEAP, SCONE_STACK, SCONE_ALLOW_DLOPEN and SCONE_FORK as at conversion"
	case "tolerate":
		return "the session must tolerate simulation (and debug-mode for debug images): convert with --allow-simulation or --cas-debug"
	case "request":
		return "the shim and the CAS disagree on the protocol; use matching sconify versions"
	}
	return "see the CAS's log for the reason"
}
