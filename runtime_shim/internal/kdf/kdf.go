// Package kdf holds the two key derivations the shim needs: HKDF-SHA256 (RFC 5869) for SCFS
// keys and the Concat KDF (NIST SP 800-56A, single round of SHA-256) for ECDH-ES JWE.
package kdf

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
)

// HKDF returns 32 bytes of HKDF-SHA256 with an empty salt (which RFC 5869 treats as 32 zero
// bytes: HMAC pads a short key with zeros either way).
func HKDF(secret, info []byte) []byte {
	extract := hmac.New(sha256.New, nil)
	extract.Write(secret)
	prk := extract.Sum(nil)
	expand := hmac.New(sha256.New, prk)
	expand.Write(info)
	expand.Write([]byte{1})
	out := expand.Sum(nil)
	Zero(prk)
	return out
}

// ConcatKDF256 derives a 256-bit key from the shared secret z for JWE ECDH-ES direct key
// agreement (RFC 7518 section 4.6.2) with the given "enc" algorithm name and empty
// PartyUInfo/PartyVInfo.
func ConcatKDF256(z []byte, alg string) []byte {
	h := sha256.New()
	h.Write([]byte{0, 0, 0, 1}) // round counter: 256 bits need one SHA-256 round
	h.Write(z)
	writeLengthPrefixed(h, []byte(alg)) // AlgorithmID
	writeLengthPrefixed(h, nil)         // PartyUInfo
	writeLengthPrefixed(h, nil)         // PartyVInfo
	h.Write([]byte{0, 0, 1, 0})         // SuppPubInfo: key length in bits
	return h.Sum(nil)
}

func writeLengthPrefixed(h interface{ Write([]byte) (int, error) }, b []byte) {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(b)))
	_, _ = h.Write(n[:])
	_, _ = h.Write(b)
}

// Zero overwrites key material that is no longer needed. Go may have copied it elsewhere;
// this shortens the life of the copies the shim holds.
func Zero(b []byte) {
	for i := range b {
		b[i] = 0
	}
}
