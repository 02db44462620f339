package attest

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"path/filepath"
	"strings"
	"testing"

	"sconify/runtime_shim/internal/testkit"
)

type jweCase struct {
	JWE          string            `json:"jwe"`
	PlaintextB64 string            `json:"plaintext_b64"`
	TEEPrivate   map[string]string `json:"tee_private_jwk"`
}

func loadJWECases(t *testing.T) []jweCase {
	var cases []jweCase
	testkit.LoadJSON(t, filepath.Join(testkit.VectorDir(t, "jwe"), "cases.json"), &cases)
	if len(cases) == 0 {
		t.Fatal("no JWE vectors")
	}
	return cases
}

// The cross-language acceptance: every JWE sealed by sconify.crypto.jwe opens here.
func TestJWEVectors(t *testing.T) {
	for i, c := range loadJWECases(t) {
		key, err := KeyFromJWK(c.TEEPrivate["d"], c.TEEPrivate["x"], c.TEEPrivate["y"])
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		got, err := key.Decrypt(c.JWE)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		want, _ := base64.StdEncoding.DecodeString(c.PlaintextB64)
		if !bytes.Equal(got, want) {
			t.Fatalf("case %d: plaintext differs", i)
		}
	}
}

// The thumbprint of vector 0's key, computed in Python with hashlib over the RFC 7638 members.
func TestThumbprintMatchesPython(t *testing.T) {
	c := loadJWECases(t)[0]
	key, err := KeyFromJWK(c.TEEPrivate["d"], c.TEEPrivate["x"], c.TEEPrivate["y"])
	if err != nil {
		t.Fatal(err)
	}
	tp := key.Thumbprint()
	if got := hex.EncodeToString(tp[:]); got != "68e72801937807537ac9004a309ce74dafdf59772621b0a17ca3f00858ae5e70" {
		t.Fatalf("thumbprint %s", got)
	}
}

func TestJWERoundTripAndRefusals(t *testing.T) {
	key, err := NewEphemeralKey()
	if err != nil {
		t.Fatal(err)
	}
	jwk := key.JWK()
	jwe, err := testkit.SealJWE(jwk["x"].(string), jwk["y"].(string), []byte("secret config"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := key.Decrypt(jwe); err != nil || string(got) != "secret config" {
		t.Fatalf("round trip: %q %v", got, err)
	}
	other, _ := NewEphemeralKey()
	if _, err := other.Decrypt(jwe); err == nil {
		t.Error("opened with another key")
	}
	parts := strings.Split(jwe, ".")
	b64 := base64.RawURLEncoding
	header := func(h string) string {
		return b64.EncodeToString([]byte(h)) + "." + strings.Join(parts[1:], ".")
	}
	hdr, _ := b64.DecodeString(parts[0])
	flip := func(seg int) string {
		p := append([]string{}, parts...)
		raw, _ := b64.DecodeString(p[seg])
		raw[0] ^= 1
		p[seg] = b64.EncodeToString(raw)
		return strings.Join(p, ".")
	}
	offCurve := strings.Replace(string(hdr), `"y":"`, `"y":"A`, 1)
	offCurve = offCurve[:strings.Index(offCurve, `"y":"`)+5] + b64.EncodeToString(make([]byte, 32)) + `"}}`
	for name, bad := range map[string]string{
		"four segments":  strings.Join(parts[:4], "."),
		"encrypted key":  parts[0] + ".AAAA." + strings.Join(parts[2:], "."),
		"zip header":     header(strings.Replace(string(hdr), `{"alg"`, `{"zip":"DEF","alg"`, 1)),
		"other alg":      header(strings.Replace(string(hdr), "ECDH-ES", "ECDH-ES+A256KW", 1)),
		"other enc":      header(strings.Replace(string(hdr), "A256GCM", "A128GCM", 1)),
		"off-curve epk":  header(offCurve),
		"flipped iv":     flip(2),
		"flipped ct":     flip(3),
		"flipped tag":    flip(4),
		"padded base64":  jwe + "=",
		"flipped header": header(strings.Replace(string(hdr), `"alg"`, `"alg" `, 1)),
	} {
		if _, err := key.Decrypt(bad); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestReportData(t *testing.T) {
	nonce := bytes.Repeat([]byte{0xab}, 32)
	var tp [32]byte
	tp[0] = 1
	rd := ReportData(nonce, tp)
	if len(rd) != 64 || !bytes.Equal(rd[32:], make([]byte, 32)) {
		t.Fatalf("layout: %x", rd)
	}
	if hex.EncodeToString(rd[:4]) == "00000000" {
		t.Fatal("not hashed")
	}
}
