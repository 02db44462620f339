package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"strings"
	"testing"
)

func tarOf(t *testing.T, name, body string) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := tar.NewWriter(&buf)
	if err := w.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte(body)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func run(t *testing.T, blob []byte, marker string) []map[string]any {
	t.Helper()
	var out bytes.Buffer
	if err := list(bytes.NewReader(blob), []byte(marker), false, json.NewEncoder(&out)); err != nil {
		t.Fatal(err)
	}
	var lines []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, m)
	}
	return lines
}

func TestListsPlainAndGzipAndFindsTheMarkerAcrossWrites(t *testing.T) {
	body := strings.Repeat("x", 70000) + "SECRET" + strings.Repeat("y", 10)
	plain := tarOf(t, "app/a.txt", body)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(plain)
	zw.Close()
	for want, blob := range map[string][]byte{"none": plain, "gzip": gz.Bytes()} {
		lines := run(t, blob, "SECRET")
		if len(lines) != 2 || lines[0]["clean"] != "/app/a.txt" || lines[0]["marker"] != true {
			t.Fatalf("%s: %v", want, lines)
		}
		if lines[1]["end"] != "eof" || lines[1]["compression"] != want {
			t.Fatalf("%s: %v", want, lines[1])
		}
	}
}

func TestAReaderErrorIsTheLastLine(t *testing.T) {
	blob := tarOf(t, "a", "data")
	blob[148] = '9' // break the checksum
	lines := run(t, blob, "")
	if len(lines) != 1 || lines[0]["end"] != "error" {
		t.Fatalf("%v", lines)
	}
}

func TestSniffNamesWhatTheEnginesDetect(t *testing.T) {
	cases := map[string][]byte{
		"gzip":  {0x1f, 0x8b, 0x08, 0},
		"bzip2": []byte("BZh9"),
		"zstd":  {0x28, 0xb5, 0x2f, 0xfd},
		"xz":    {0xfd, '7', 'z', 'X', 'Z', 0},
		"none":  []byte("ustar"),
	}
	for want, head := range cases {
		if got := sniff(head); got != want {
			t.Errorf("sniff(%x) = %s, want %s", head, got, want)
		}
	}
}

func TestBatchListsEachBlobInTurnAndRawSkipsTheSniff(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(tarOf(t, "zipped", "z"))
	zw.Close()
	blobs := [][]byte{tarOf(t, "first", "1"), []byte("not a tar"), gz.Bytes(), tarOf(t, "\xffraw", "")}
	var in bytes.Buffer
	for _, blob := range blobs {
		var size [8]byte
		binary.BigEndian.PutUint64(size[:], uint64(len(blob)))
		in.Write(size[:])
		in.Write(blob)
	}
	var out bytes.Buffer
	if err := listBatch(&in, nil, true, json.NewEncoder(&out)); err != nil {
		t.Fatal(err)
	}
	var ends, names []string
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatal(err)
		}
		if end, ok := m["end"].(string); ok {
			ends = append(ends, end+"/"+m["compression"].(string))
		} else {
			names = append(names, m["clean_hex"].(string))
		}
	}
	// the gzip blob is read as a tar (and fails) because of -raw
	if strings.Join(ends, ",") != "eof/none,error/none,error/none,eof/none" {
		t.Fatalf("ends %v", ends)
	}
	if strings.Join(names, ",") != "2f6669727374,2fff726177" {
		t.Fatalf("names %v", names)
	}
	if err := listBatch(bytes.NewReader([]byte{0, 0, 0, 0, 0, 0, 0, 9, 'x'}), nil, true, json.NewEncoder(&out)); err == nil {
		t.Fatal("a blob cut short is an I/O error")
	}
}
