package testkit

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"sconify/runtime_shim/internal/canon"
	"sconify/runtime_shim/internal/kdf"
)

// LAS is an in-process stand-in of `sconify las serve` (contracts section 6).
type LAS struct {
	Server *httptest.Server
	key    *ecdsa.PrivateKey
	KeyID  string
	PEM    string
}

// NewLAS starts a LAS stand-in on a loopback port, stopped at the end of the test.
func NewLAS(t testing.TB) *LAS {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	l := &LAS{key: key, KeyID: hex.EncodeToString(sum[:]),
		PEM: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))}
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/quote", l.quote)
	l.Server = httptest.NewServer(mux)
	t.Cleanup(l.Server.Close)
	return l
}

// Addr returns host:port.
func (l *LAS) Addr() string { return l.Server.Listener.Addr().String() }

func (l *LAS) quote(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Debug       bool   `json:"debug"`
		Measurement string `json:"measurement"`
		ReportData  string `json:"report_data"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.ReportData) != 128 || len(req.Measurement) != 64 {
		refuse(w, http.StatusBadRequest, "request", "malformed quote request")
		return
	}
	quote := canon.Marshal(canon.Object{
		"debug": req.Debug, "issued_at": time.Now().Unix(), "mrenclave": req.Measurement,
		"qe_key_id": l.KeyID, "report_data": req.ReportData, "type": "sconify-sim-quote", "version": 1,
	})
	digest := sha256.Sum256(quote)
	sig, err := ecdsa.SignASN1(rand.Reader, l.key, digest[:])
	if err != nil {
		refuse(w, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	reply(w, map[string]string{
		"qe_key_id": l.KeyID, "qe_pubkey": l.PEM,
		"quote": base64.StdEncoding.EncodeToString(quote), "signature": base64.StdEncoding.EncodeToString(sig),
	})
}

// CAS is an in-process stand-in of the CAS enclave API (contracts section 7) over TLS. Its
// policy can change while it serves (the methods lock).
type CAS struct {
	Server   *httptest.Server
	KeyHash  string // hex SHA-256 of the server certificate's SPKI
	ConfigID string

	mu        sync.Mutex
	mrenclave map[string]bool
	trustedQE map[string]bool
	simulate  bool   // tolerate simulation
	config    []byte // the plaintext sealed to the shim
	failFirst int    // answer 503 to this many requests before serving
	nonces    map[string]bool
	attested  int
}

// Allow adds a measurement to the service's mrenclaves.
func (c *CAS) Allow(measurement string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mrenclave[measurement] = true
}

// SetConfig sets the plaintext released to attested shims.
func (c *CAS) SetConfig(config []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.config = config
}

// SetSimulate says whether simulation is tolerated.
func (c *CAS) SetSimulate(ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.simulate = ok
}

// FailFirst makes the next n requests fail with 503.
func (c *CAS) FailFirst(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failFirst = n
}

// Attested returns how many attestations succeeded.
func (c *CAS) Attested() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.attested
}

// NewCAS starts a CAS stand-in on a loopback port that serves configID to measurements in
// mrenclave, trusting the given LAS.
func NewCAS(t testing.TB, las *LAS, configID string, config []byte, mrenclave ...string) *CAS {
	c := &CAS{ConfigID: configID, mrenclave: map[string]bool{}, trustedQE: map[string]bool{las.KeyID: true},
		simulate: true, config: config, nonces: map[string]bool{}}
	for _, m := range mrenclave {
		c.mrenclave[m] = true
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/enclave/challenge", c.challenge)
	mux.HandleFunc("/v1/enclave/attest", c.attest)
	c.Server = httptest.NewTLSServer(mux)
	t.Cleanup(c.Server.Close)
	sum := sha256.Sum256(c.Server.Certificate().RawSubjectPublicKeyInfo)
	c.KeyHash = hex.EncodeToString(sum[:])
	return c
}

// Addr returns host:port.
func (c *CAS) Addr() string { return c.Server.Listener.Addr().String() }

func (c *CAS) failing(w http.ResponseWriter) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failFirst > 0 {
		c.failFirst--
		refuse(w, http.StatusServiceUnavailable, "internal", "starting up")
		return true
	}
	return false
}

func (c *CAS) challenge(w http.ResponseWriter, r *http.Request) {
	if c.failing(w) {
		return
	}
	var req struct {
		ConfigID string `json:"config_id"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		refuse(w, http.StatusBadRequest, "request", "malformed")
		return
	}
	if req.ConfigID != c.ConfigID {
		refuse(w, http.StatusNotFound, "session", "no session "+req.ConfigID)
		return
	}
	n := make([]byte, 32)
	_, _ = rand.Read(n)
	nonce := hex.EncodeToString(n)
	c.mu.Lock()
	c.nonces[nonce+" "+req.ConfigID] = true
	c.mu.Unlock()
	reply(w, map[string]any{"expires_in": 60, "nonce": nonce})
}

func (c *CAS) attest(w http.ResponseWriter, r *http.Request) {
	if c.failing(w) {
		return
	}
	var req struct {
		ConfigID  string            `json:"config_id"`
		Nonce     string            `json:"nonce"`
		Quote     string            `json:"quote"`
		Signature string            `json:"signature"`
		QEPubkey  string            `json:"qe_pubkey"`
		TEEPubkey map[string]string `json:"tee_pubkey"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		refuse(w, http.StatusBadRequest, "request", "malformed")
		return
	}
	c.mu.Lock()
	fresh := c.nonces[req.Nonce+" "+req.ConfigID]
	delete(c.nonces, req.Nonce+" "+req.ConfigID)
	trustedQE, mrenclave, simulate, config := c.trustedQE, c.mrenclave, c.simulate, c.config
	c.mu.Unlock()
	if !fresh {
		refuse(w, http.StatusForbidden, "nonce", "unknown or used nonce")
		return
	}
	block, _ := pem.Decode([]byte(req.QEPubkey))
	if block == nil {
		refuse(w, http.StatusForbidden, "qe_key", "bad PEM")
		return
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	sum := sha256.Sum256(block.Bytes)
	if err != nil || !trustedQE[hex.EncodeToString(sum[:])] {
		refuse(w, http.StatusForbidden, "qe_key", "the QE key is not trusted")
		return
	}
	quote, _ := base64.StdEncoding.DecodeString(req.Quote)
	sig, _ := base64.StdEncoding.DecodeString(req.Signature)
	digest := sha256.Sum256(quote)
	if !ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), digest[:], sig) {
		refuse(w, http.StatusForbidden, "signature", "bad quote signature")
		return
	}
	var q struct {
		Mrenclave  string `json:"mrenclave"`
		ReportData string `json:"report_data"`
		Debug      bool   `json:"debug"`
	}
	_ = json.Unmarshal(quote, &q)
	tee := canon.Object{"crv": req.TEEPubkey["crv"], "kty": req.TEEPubkey["kty"], "x": req.TEEPubkey["x"], "y": req.TEEPubkey["y"]}
	thumb := sha256.Sum256(canon.Marshal(tee))
	nonce, _ := hex.DecodeString(req.Nonce)
	bind := sha256.Sum256(append(nonce, thumb[:]...))
	if q.ReportData != hex.EncodeToString(append(bind[:], make([]byte, 32)...)) {
		refuse(w, http.StatusForbidden, "report_data", "the quote does not bind the TEE key")
		return
	}
	c.mu.Lock()
	allowed := mrenclave[q.Mrenclave]
	c.mu.Unlock()
	if !allowed {
		refuse(w, http.StatusForbidden, "mrenclave", "measurement "+q.Mrenclave+" is not allowed")
		return
	}
	if !simulate {
		refuse(w, http.StatusForbidden, "tolerate", "simulation is not tolerated")
		return
	}
	jwe, err := SealJWE(req.TEEPubkey["x"], req.TEEPubkey["y"], config)
	if err != nil {
		refuse(w, http.StatusForbidden, "report_data", err.Error())
		return
	}
	c.mu.Lock()
	c.attested++
	c.mu.Unlock()
	reply(w, map[string]string{"config": jwe})
}

// SealJWE encrypts plaintext to the P-256 public key (x, y base64url) as a compact JWE with
// ECDH-ES and A256GCM, as sconify.crypto.jwe does.
func SealJWE(xs, ys string, plaintext []byte) (string, error) {
	x, err := base64.RawURLEncoding.DecodeString(xs)
	if err != nil {
		return "", err
	}
	y, err := base64.RawURLEncoding.DecodeString(ys)
	if err != nil {
		return "", err
	}
	eph, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", err
	}
	zx, _ := elliptic.P256().ScalarMult(new(big.Int).SetBytes(x), new(big.Int).SetBytes(y), eph.D.FillBytes(make([]byte, 32)))
	cek := kdf.ConcatKDF256(zx.FillBytes(make([]byte, 32)), "A256GCM")
	b64 := base64.RawURLEncoding
	header := b64.EncodeToString(canon.Marshal(canon.Object{"alg": "ECDH-ES", "enc": "A256GCM", "epk": canon.Object{
		"crv": "P-256", "kty": "EC",
		"x": b64.EncodeToString(eph.X.FillBytes(make([]byte, 32))), "y": b64.EncodeToString(eph.Y.FillBytes(make([]byte, 32))),
	}}))
	block, err := aes.NewCipher(cek)
	if err != nil {
		return "", err
	}
	aead, _ := cipher.NewGCM(block)
	iv := make([]byte, 12)
	_, _ = rand.Read(iv)
	sealed := aead.Seal(nil, iv, plaintext, []byte(header))
	ct, tag := sealed[:len(sealed)-16], sealed[len(sealed)-16:]
	return header + ".." + b64.EncodeToString(iv) + "." + b64.EncodeToString(ct) + "." + b64.EncodeToString(tag), nil
}

func reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func refuse(w http.ResponseWriter, status int, check, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"check": check, "message": message}})
}
