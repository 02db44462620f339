package session

import (
	"encoding/base64"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"sconify/runtime_shim/internal/testkit"
)

const full = `{"command":["python3","app.py"],"environment":{"B":"2","A":"x=1"},` +
	`"fspf_key":"66e7935397249112d1148e6ce98a396a8c96b3b0ae70708c16ff284c66f0821e",` +
	`"fspf_path":"/sconify/fspf/fs.fspf","fspf_tag":"5a0fe9bdcfed5c0391a707e05f6cfbeb",` +
	`"injection_files":[{"content_b64":"a2V5PXZhbHVlCg==","mode":384,"path":"/etc/x"}],` +
	`"pwd":"/app","session_hash":"abc"}`

func TestParse(t *testing.T) {
	c, err := Parse([]byte(full))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.Env(), []string{"A=x=1", "B=2"}) || !c.HasVolume() || len(c.VolumeKey()) != 32 ||
		len(c.VolumeTag()) != 16 || c.PWD != "/app" || c.InjectionFiles[0].Mode != 0o600 {
		t.Fatalf("unexpected %+v", c)
	}
	bare, err := Parse([]byte(`{"command":["/bin/true"],"environment":{},"fspf_key":"","fspf_path":"","fspf_tag":"","injection_files":[],"pwd":"","session_hash":"h"}`))
	if err != nil || bare.HasVolume() || bare.PWD != "/" {
		t.Fatalf("bare: %+v %v", bare, err)
	}
}

func TestParseRejects(t *testing.T) {
	for from, to := range map[string]string{
		`["python3","app.py"]`:                `[]`,
		`"app.py"]`:                           `"a\u0000"]`,
		`"B":"2"`:                             `"B=C":"2"`,
		`"pwd":"/app"`:                        `"pwd":"app"`,
		`"fspf_path":"/sconify/fspf/fs.fspf"`: `"fspf_path":""`,
		`"fspf_key":"66e7`:                    `"fspf_key":"zze7`,
		`"fspf_tag":"5a0fe9bdcfed5c0391a707e05f6cfbeb"`: `"fspf_tag":"5a0f"`,
		`"path":"/etc/x"`:      `"path":"/etc/../x"`,
		`"a2V5PXZhbHVlCg=="`:   `"a2V5PXZhbHVlCg"`,
		`"mode":384`:           `"mode":70000`,
		`"session_hash":"abc"`: `"session_hash":"abc","extra":1`,
	} {
		raw := strings.Replace(full, from, to, 1)
		if raw == full {
			t.Fatalf("replacement %q did not apply", from)
		}
		if _, err := Parse([]byte(raw)); err == nil {
			t.Errorf("accepted %s", to)
		}
	}
}

// The realistic configuration sealed in the JWE vectors is one this shim accepts.
func TestVectorConfigParses(t *testing.T) {
	var cases []struct {
		PlaintextB64 string `json:"plaintext_b64"`
	}
	testkit.LoadJSON(t, filepath.Join(testkit.VectorDir(t, "jwe"), "cases.json"), &cases)
	found := false
	for _, c := range cases {
		plain, _ := base64.StdEncoding.DecodeString(c.PlaintextB64)
		if !strings.HasPrefix(string(plain), `{"command"`) {
			continue
		}
		found = true
		cfg, err := Parse(plain)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Environment["GREETING"] != "grüß dich" || cfg.Command[3] != "wörld" {
			t.Fatalf("unexpected %+v", cfg)
		}
	}
	if !found {
		t.Fatal("no configuration among the JWE vectors")
	}
}
