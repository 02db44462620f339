package config

import (
	"strings"
	"testing"
	"time"

	"sconify/runtime_shim/internal/logging"
)

const validConfig = `{"auth_manifest":"/sconify/auth/manifest.json","binary":"/usr/bin/python3.11",` +
	`"cas_key_hash":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef","debug":true,` +
	`"guard":"","plaintext_root":"/dev/shm/sconify","regions":["/app","/srv/www"],"version":1}`

func TestParseConfig(t *testing.T) {
	c, err := Parse([]byte(validConfig))
	if err != nil {
		t.Fatal(err)
	}
	if c.Binary != "/usr/bin/python3.11" || !c.Debug || len(c.Regions) != 2 || string(c.Raw) != validConfig {
		t.Fatalf("unexpected config %+v", c)
	}
}

func TestParseConfigRejects(t *testing.T) {
	cases := map[string]string{
		`"version":1`:                         `"version":2`,
		`"binary":"/usr/bin/python3.11"`:      `"binary":"python3"`,
		`"plaintext_root":"/dev/shm/sconify"`: `"plaintext_root":"/dev/shm/../x"`,
		`"regions":["/app","/srv/www"]`:       `"regions":["/app","/app/x"]`,
		`"guard":""`:                          `"guard":"lib.so"`,
		`"cas_key_hash":"0123`:                `"cas_key_hash":"X123`,
	}
	for from, to := range cases {
		raw := strings.Replace(validConfig, from, to, 1)
		if _, err := Parse([]byte(raw)); err == nil {
			t.Errorf("accepted %s", to)
		}
	}
	for _, raw := range []string{"", "[]", validConfig + "{}", `{"version":1}`} {
		if _, err := Parse([]byte(raw)); err == nil {
			t.Errorf("accepted %q", raw)
		}
	}
}

func TestCheckRegions(t *testing.T) {
	if err := CheckRegions([]string{"/app", "/apps", "/srv/a"}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]string{{"/"}, {"/a", "/a"}, {"/a/b", "/a"}, {"app"}, {"/a/"}} {
		if err := CheckRegions(bad); err == nil {
			t.Errorf("accepted %v", bad)
		}
	}
}

func env(m map[string]string) LookupFunc {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestFromEnvDefaults(t *testing.T) {
	s, err := FromEnv(env(map[string]string{"SCONE_HEAP": ""}))
	if err != nil {
		t.Fatal(err)
	}
	want := Settings{Mode: ModeAuto, Heap: 64 << 20, Stack: 64 << 10, LogLevel: logging.Warning,
		AttestTimeout: 20 * time.Second, ConfigPath: "/sconify/config.json"}
	if *s != want {
		t.Fatalf("got %+v\nwant %+v", *s, want)
	}
}

func TestFromEnvValues(t *testing.T) {
	s, err := FromEnv(env(map[string]string{
		"SCONE_MODE": "sim", "SCONE_HEAP": "1G", "SCONE_STACK": "4M", "SCONE_ALLOW_DLOPEN": "2",
		"SCONE_FORK": "1", "SCONE_HASH": "1", "SCONE_VERSION": "1", "SCONE_LOG": "7",
		"SCONIFY_ATTEST_TIMEOUT": "3", "SCONIFY_UNSAFE_PLAINTEXT_ON_DISK": "1",
		"SCONE_CAS_ADDR": "cas", "SCONE_LAS_ADDR": "las:1", "SCONE_CONFIG_ID": "a/b/c",
		"SCONIFY_ROOT": "/r", "SCONIFY_CONFIG": "/c.json",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := Settings{Mode: ModeSim, Heap: 1 << 30, Stack: 4 << 20, Dlopen: 2, Fork: 1, Hash: true,
		Version: true, LogLevel: logging.Trace, CASAddr: "cas", LASAddr: "las:1", ConfigID: "a/b/c",
		AttestTimeout: 3 * time.Second, UnsafePlaintextOnDisk: true, Root: "/r", ConfigPath: "/c.json"}
	if *s != want {
		t.Fatalf("got %+v\nwant %+v", *s, want)
	}
}

func TestFromEnvRejects(t *testing.T) {
	for name, value := range map[string]string{
		"SCONE_MODE": "fast", "SCONE_HEAP": "4M", "SCONE_STACK": "16M", "SCONE_ALLOW_DLOPEN": "3",
		"SCONE_FORK": "yes", "SCONE_HASH": "true", "SCONE_LOG": "loud", "SCONIFY_ATTEST_TIMEOUT": "0",
		"SCONIFY_UNSAFE_PLAINTEXT_ON_DISK": "2",
	} {
		_, err := FromEnv(env(map[string]string{name: value}))
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%s: got %v", name, value, err)
		}
	}
}

func TestParseSize(t *testing.T) {
	ok := map[string]uint64{
		"65536": 65536, "64k": 65536, "64K": 65536, "4M": 4 << 20, "1g": 1 << 30, " 1G\n": 1 << 30,
		"0010m": 10 << 20, "\x1c8M": 8 << 20, "18446744073709551615": 1<<64 - 1,
	}
	for in, want := range ok {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "G", "1.5G", "-1", "+1", "1KB", "1T", "1 G", "0x10",
		"18446744073709551616", "17179869184G", "123456789012345678901", "１"} {
		if got, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) = %d, accepted", bad, got)
		}
	}
}
