// Package attest obtains the session configuration: a quote from the LAS binding an
// ephemeral key to the measurement, then the CAS's compact JWE sealed to that key
// (docs/contracts.md sections 6-7).
package attest

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"sconify/runtime_shim/internal/canon"
	"sconify/runtime_shim/internal/kdf"
)

var b64url = base64.RawURLEncoding.Strict()

// EphemeralKey is the shim's one-attempt P-256 key: the CAS seals the configuration to it.
type EphemeralKey struct {
	d    []byte // private scalar, 32 bytes big-endian
	x, y *big.Int
}

// NewEphemeralKey generates a fresh P-256 key.
func NewEphemeralKey() (*EphemeralKey, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	k := &EphemeralKey{d: priv.D.FillBytes(make([]byte, 32)), x: priv.X, y: priv.Y}
	priv.D.SetInt64(0)
	return k, nil
}

// KeyFromJWK rebuilds a key from the base64url "d", "x" and "y" of a P-256 JWK (used by the
// cross-language vectors).
func KeyFromJWK(d, x, y string) (*EphemeralKey, error) {
	db, err := coordinate(d)
	if err != nil {
		return nil, fmt.Errorf("d: %v", err)
	}
	px, py, err := point(x, y)
	if err != nil {
		return nil, err
	}
	gx, gy := elliptic.P256().ScalarBaseMult(db)
	if gx.Cmp(px) != 0 || gy.Cmp(py) != 0 {
		return nil, errors.New("d does not match x and y")
	}
	return &EphemeralKey{d: db, x: px, y: py}, nil
}

// JWK returns the public key as the members RFC 7638 hashes, in canonical order.
func (k *EphemeralKey) JWK() canon.Object {
	return canon.Object{
		"crv": "P-256", "kty": "EC",
		"x": b64url.EncodeToString(k.x.FillBytes(make([]byte, 32))),
		"y": b64url.EncodeToString(k.y.FillBytes(make([]byte, 32))),
	}
}

// Thumbprint returns the RFC 7638 JWK thumbprint (SHA-256) of the public key.
func (k *EphemeralKey) Thumbprint() [32]byte {
	return sha256.Sum256(canon.Marshal(k.JWK()))
}

// Zero forgets the private scalar.
func (k *EphemeralKey) Zero() { kdf.Zero(k.d) }

// ReportData returns SHA-256(nonce || thumbprint) || 32 zero bytes: what the quote must carry
// so the CAS knows the configuration goes to the key of this attested shim.
func ReportData(nonce []byte, thumbprint [32]byte) []byte {
	h := sha256.New()
	h.Write(nonce)
	h.Write(thumbprint[:])
	return append(h.Sum(nil), make([]byte, 32)...)
}

type jweHeader struct {
	Alg string `json:"alg"`
	Enc string `json:"enc"`
	Epk struct {
		Crv string `json:"crv"`
		Kty string `json:"kty"`
		X   string `json:"x"`
		Y   string `json:"y"`
	} `json:"epk"`
}

// Decrypt opens a compact JWE with alg ECDH-ES (direct key agreement) and enc A256GCM
// addressed to k. Headers this shim does not implement (zip, crit, ...) are refused.
func (k *EphemeralKey) Decrypt(compact string) ([]byte, error) {
	parts := strings.Split(compact, ".")
	if len(parts) != 5 {
		return nil, fmt.Errorf("not a compact JWE (%d segments, want 5)", len(parts))
	}
	if parts[1] != "" {
		return nil, errors.New("the encrypted key must be empty for ECDH-ES")
	}
	rawHeader, err := b64url.DecodeString(parts[0])
	if err != nil {
		return nil, fmt.Errorf("header: %v", err)
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(rawHeader, &members); err != nil {
		return nil, fmt.Errorf("header: %v", err)
	}
	for name := range members {
		if name != "alg" && name != "enc" && name != "epk" {
			return nil, fmt.Errorf("header parameter %q is not supported", name)
		}
	}
	var h jweHeader
	if err := json.Unmarshal(rawHeader, &h); err != nil {
		return nil, fmt.Errorf("header: %v", err)
	}
	if h.Alg != "ECDH-ES" || h.Enc != "A256GCM" {
		return nil, fmt.Errorf("alg %q / enc %q, want ECDH-ES / A256GCM", h.Alg, h.Enc)
	}
	if h.Epk.Kty != "EC" || h.Epk.Crv != "P-256" {
		return nil, fmt.Errorf("epk is %s/%s, want EC/P-256", h.Epk.Kty, h.Epk.Crv)
	}
	ex, ey, err := point(h.Epk.X, h.Epk.Y)
	if err != nil {
		return nil, fmt.Errorf("epk: %v", err)
	}
	iv, err := b64url.DecodeString(parts[2])
	if err != nil || len(iv) != 12 {
		return nil, errors.New("the IV is not 12 bytes of base64url")
	}
	ct, err := b64url.DecodeString(parts[3])
	if err != nil {
		return nil, fmt.Errorf("ciphertext: %v", err)
	}
	tag, err := b64url.DecodeString(parts[4])
	if err != nil || len(tag) != 16 {
		return nil, errors.New("the tag is not 16 bytes of base64url")
	}

	zx, _ := elliptic.P256().ScalarMult(ex, ey, k.d)
	z := zx.FillBytes(make([]byte, 32))
	cek := kdf.ConcatKDF256(z, "A256GCM")
	kdf.Zero(z)
	defer kdf.Zero(cek)
	block, err := aes.NewCipher(cek)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	plain, err := aead.Open(nil, iv, append(ct, tag...), []byte(parts[0]))
	if err != nil {
		return nil, errors.New("it failed authentication (not sealed to this shim's key)")
	}
	return plain, nil
}

func coordinate(s string) ([]byte, error) {
	b, err := b64url.DecodeString(s)
	if err != nil {
		return nil, err
	}
	if len(b) != 32 {
		return nil, fmt.Errorf("%d bytes, want 32", len(b))
	}
	return b, nil
}

// point decodes and checks a P-256 public point: an off-curve point would leak the private
// scalar to an invalid-curve attack.
func point(xs, ys string) (*big.Int, *big.Int, error) {
	xb, err := coordinate(xs)
	if err != nil {
		return nil, nil, fmt.Errorf("x: %v", err)
	}
	yb, err := coordinate(ys)
	if err != nil {
		return nil, nil, fmt.Errorf("y: %v", err)
	}
	x, y := new(big.Int).SetBytes(xb), new(big.Int).SetBytes(yb)
	if !elliptic.P256().IsOnCurve(x, y) {
		return nil, nil, errors.New("the point is not on P-256")
	}
	return x, y, nil
}
