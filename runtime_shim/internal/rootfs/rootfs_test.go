package rootfs

import "testing"

func TestPath(t *testing.T) {
	host, err := New("")
	if err != nil || host.Prefixed() || host.Path("/sconify/config.json") != "/sconify/config.json" {
		t.Fatalf("identity root broken: %v %v", host, err)
	}
	r, err := New("/tmp/img")
	if err != nil || !r.Prefixed() {
		t.Fatal(err)
	}
	for in, want := range map[string]string{
		"/sconify/bin/shim": "/tmp/img/sconify/bin/shim",
		"/../../etc/passwd": "/tmp/img/etc/passwd",
		"/":                 "/tmp/img/",
	} {
		if got := r.Path(in); got != want {
			t.Errorf("Path(%q) = %q, want %q", in, got, want)
		}
	}
	for _, bad := range []string{"rel", "/tmp/../x", "/tmp/"} {
		if _, err := New(bad); err == nil {
			t.Errorf("New(%q) accepted", bad)
		}
	}
}
