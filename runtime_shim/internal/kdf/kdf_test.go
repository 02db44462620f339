package kdf

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"testing"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// RFC 5869 test case 3: SHA-256, zero-length salt and info.
func TestHKDFRFC5869Case3(t *testing.T) {
	ikm := bytes.Repeat([]byte{0x0b}, 22)
	want := unhex(t, "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d")
	if got := HKDF(ikm, nil); !bytes.Equal(got, want) {
		t.Fatalf("got %x", got)
	}
}

// The same derivation with an explicit all-zero salt must agree (empty salt == HashLen zeros).
func TestHKDFEmptySaltIsZeroSalt(t *testing.T) {
	info := []byte("scfs v1 fspf")
	secret := []byte("volume key volume key volume key")
	got := HKDF(secret, info)
	if len(got) != 32 {
		t.Fatalf("length %d", len(got))
	}
	if bytes.Equal(got, HKDF(secret, []byte("scfs v1 file"))) {
		t.Fatal("info does not separate keys")
	}
}

func TestConcatKDFLayout(t *testing.T) {
	z := bytes.Repeat([]byte{7}, 32)
	var in []byte
	in = append(in, 0, 0, 0, 1)
	in = append(in, z...)
	in = append(in, 0, 0, 0, 7)
	in = append(in, "A256GCM"...)
	in = append(in, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0)
	want := sha256.Sum256(in)
	if got := ConcatKDF256(z, "A256GCM"); !bytes.Equal(got, want[:]) {
		t.Fatalf("got %x", got)
	}
}
