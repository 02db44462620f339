package attest

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/http"

	"sconify/runtime_shim/internal/config"
)

// Quote is the LAS's answer to POST /v1/quote, passed to the CAS unchanged.
type Quote struct {
	QEKeyID   string `json:"qe_key_id"`
	QEPubkey  string `json:"qe_pubkey"`
	Quote     string `json:"quote"`
	Signature string `json:"signature"`
}

// LAS is a client of the local attestation service (plain HTTP).
type LAS struct {
	base   string
	client *http.Client
}

// NewLAS returns a client for the LAS at host:port.
func NewLAS(hostPort string) *LAS {
	return &LAS{base: "http://" + hostPort, client: newClient(nil)}
}

// Quote asks for a quote over measurement and reportData (64 bytes).
func (l *LAS) Quote(ctx context.Context, measurement string, reportData []byte, debug bool) (*Quote, error) {
	req := map[string]any{"debug": debug, "measurement": measurement, "report_data": hex.EncodeToString(reportData)}
	var q Quote
	if err := exchange(ctx, l.client, "LAS", http.MethodPost, l.base+"/v1/quote", req, &q); err != nil {
		return nil, err
	}
	if q.Quote == "" || q.Signature == "" || q.QEPubkey == "" {
		return nil, fmt.Errorf("the LAS's answer lacks quote, signature or qe_pubkey")
	}
	return &q, nil
}

// Close drops the LAS client's idle connection.
func (l *LAS) Close() { l.client.CloseIdleConnections() }

// CAS is a client of the CAS enclave API, over TLS pinned to the CAS key.
type CAS struct {
	base   string
	client *http.Client
}

// NewCAS returns a client for the CAS at host:port that accepts only a server key hashing to
// keyHash.
func NewCAS(hostPort, serverName, keyHash string) *CAS {
	return &CAS{base: "https://" + hostPort, client: newClient(PinnedTLS(keyHash, serverName))}
}

// Close drops the CAS client's idle connection.
func (c *CAS) Close() { c.client.CloseIdleConnections() }

// Challenge returns a fresh single-use nonce (32 bytes) for configID.
func (c *CAS) Challenge(ctx context.Context, configID string) ([]byte, error) {
	var ans struct {
		Nonce string `json:"nonce"`
	}
	err := exchange(ctx, c.client, "CAS", http.MethodPost, c.base+"/v1/enclave/challenge",
		map[string]string{"config_id": configID}, &ans)
	if err != nil {
		return nil, err
	}
	if !config.IsLowerHex(ans.Nonce, 32) {
		return nil, fmt.Errorf("the CAS's nonce %q is not 64 lowercase hex digits", ans.Nonce)
	}
	nonce, _ := hex.DecodeString(ans.Nonce)
	return nonce, nil
}

// Attest presents the quote and the ephemeral public key and returns the compact JWE holding
// the session configuration.
func (c *CAS) Attest(ctx context.Context, configID string, nonce []byte, q *Quote, key *EphemeralKey) (string, error) {
	req := map[string]any{
		"config_id": configID, "nonce": hex.EncodeToString(nonce), "quote": q.Quote,
		"signature": q.Signature, "qe_pubkey": q.QEPubkey, "tee_pubkey": key.JWK(),
	}
	var ans struct {
		Config string `json:"config"`
	}
	if err := exchange(ctx, c.client, "CAS", http.MethodPost, c.base+"/v1/enclave/attest", req, &ans); err != nil {
		return "", err
	}
	if ans.Config == "" {
		return "", fmt.Errorf("the CAS's answer holds no config")
	}
	return ans.Config, nil
}
