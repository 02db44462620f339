package canon

import "testing"

func TestMarshal(t *testing.T) {
	got := string(Marshal(Object{
		"b": true, "a": "x<>&\u2028\"\\\n\t\x01\x1fé", "n": int64(-3), "u": uint64(18446744073709551615),
		"o": Object{"z": 1, "y": []any{"s", false}}, "é": 0, "Z": "",
	}))
	want := `{"Z":"","a":"x<>&` + "\u2028" + `\"\\\n\t\u0001\u001fé","b":true,"n":-3,` +
		`"o":{"y":["s",false],"z":1},"u":18446744073709551615,"é":0}`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestMarshalPanicsOnFloat(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("a float was encoded")
		}
	}()
	Marshal(Object{"f": 1.5})
}
