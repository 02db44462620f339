package attest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Default ports of the CAS enclave API and the LAS.
const (
	DefaultCASPort = 18765
	DefaultLASPort = 18766
)

const maxResponseSize = 16 << 20

// HostPort normalizes "host", "host:port", "[v6]:port" or a bare IPv6 address to host:port.
func HostPort(addr string, defaultPort int) (string, error) {
	if addr == "" {
		return "", errors.New("no address given")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		// No port: a plain host name or a bare IPv6 address.
		if ip := net.ParseIP(addr); ip != nil || !strings.Contains(addr, ":") {
			return net.JoinHostPort(addr, strconv.Itoa(defaultPort)), nil
		}
		return "", fmt.Errorf("%q is not host[:port]", addr)
	}
	if host == "" {
		return "", fmt.Errorf("%q has no host", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("%q has no valid port", addr)
	}
	return net.JoinHostPort(host, port), nil
}

// PinError means the CAS presented a key other than the one the image pins.
type PinError struct {
	Got string // hex SHA-256 of the presented SPKI, or "" when none was presented
}

func (e *PinError) Error() string {
	if e.Got == "" {
		return "the CAS presented no certificate"
	}
	return "the CAS's TLS key hashes to " + e.Got + ", not to the cas_key_hash the image pins"
}

// PinnedTLS returns a TLS configuration that accepts exactly the server whose leaf certificate
// public key (DER SubjectPublicKeyInfo) hashes to keyHash (hex SHA-256). The pin replaces CA
// verification: the image measures it, and no CA is involved (contracts section 3).
func PinnedTLS(keyHash, serverName string) *tls.Config {
	want, _ := hex.DecodeString(keyHash)
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         serverName,
		InsecureSkipVerify: true, // replaced by VerifyConnection: the pin is the trust
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return &PinError{}
			}
			got := sha256.Sum256(cs.PeerCertificates[0].RawSubjectPublicKeyInfo)
			if len(want) != len(got) || subtle.ConstantTimeCompare(got[:], want) != 1 {
				return &PinError{Got: hex.EncodeToString(got[:])}
			}
			return nil
		},
	}
}

// newClient returns an HTTP client that ignores the host's proxy settings and redirects: the
// shim talks to exactly the addresses it was given.
func newClient(tlsConf *tls.Config) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			TLSClientConfig:     tlsConf,
			TLSHandshakeTimeout: 5 * time.Second,
			MaxIdleConnsPerHost: 1,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Refusal is a service's final "no": a 4xx answer {"error":{"check","message"}}.
type Refusal struct {
	Service string // "CAS" or "LAS"
	Status  int
	Check   string
	Message string
}

func (r *Refusal) Error() string {
	return fmt.Sprintf("the %s refused (HTTP %d, check %q): %s", r.Service, r.Status, r.Check, r.Message)
}

// transient marks failures worth retrying: the service was unreachable or failed internally.
type transient struct{ err error }

func (t *transient) Error() string { return t.err.Error() }
func (t *transient) Unwrap() error { return t.err }

// exchange sends one JSON request and decodes a 2xx JSON answer into out. Connection failures
// and 5xx answers come back as *transient, a 4xx as *Refusal, a pin mismatch as *PinError.
func exchange(ctx context.Context, c *http.Client, service, method, url string, body, out any) error {
	var rd io.Reader
	if body != nil {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(body); err != nil {
			return err
		}
		rd = &buf
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		var pin *PinError
		if errors.As(err, &pin) {
			return pin
		}
		return &transient{fmt.Errorf("cannot reach the %s: %v", service, unwrapURLError(err))}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseSize))
	if err != nil {
		return &transient{fmt.Errorf("reading the %s's answer: %v", service, err)}
	}
	switch {
	case resp.StatusCode >= 500:
		return &transient{fmt.Errorf("the %s failed (HTTP %d): %s", service, resp.StatusCode, errorText(raw))}
	case resp.StatusCode >= 400:
		var e struct {
			Error struct {
				Check   string `json:"check"`
				Message string `json:"message"`
			} `json:"error"`
		}
		_ = json.Unmarshal(raw, &e)
		msg := e.Error.Message
		if msg == "" {
			msg = errorText(raw)
		}
		return &Refusal{Service: service, Status: resp.StatusCode, Check: e.Error.Check, Message: msg}
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("the %s answered HTTP %d where 200 was expected", service, resp.StatusCode)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("the %s's answer is not the expected JSON: %v", service, err)
	}
	return nil
}

// unwrapURLError drops the "Post \"https://...\":" prefix that net/http adds: the message says
// which service it was.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// errorText returns a short, printable excerpt of an unexpected answer.
func errorText(raw []byte) string {
	const max = 200
	if len(raw) > max {
		return string(raw[:max]) + "..."
	}
	if len(raw) == 0 {
		return "(empty answer)"
	}
	return string(raw)
}
