// Command tarlist prints what Go's archive/tar reads from a layer blob: the reference reader the
// container engines (moby, containerd) extract layers with. sconify's own tar reader is checked
// against it (tests/mutate/test_tar_differential.py); it is not part of any image.
//
//	tarlist [-marker TEXT] [-raw] [FILE]
//	tarlist [-marker TEXT] [-raw] -batch
//
// The blob (FILE, or standard input) is decompressed as the engines do it, by sniffing its
// first bytes (gzip and bzip2 here; zstd and xz are reported, not read, since Go's standard
// library has no reader for them); -raw reads it as a tar whatever its first bytes are. Then
// one JSON line per entry that tar.Reader.Next returns:
//
//	{"name":"...","name_hex":"...","clean":"/...","clean_hex":"...","type":48,"linkname":"...",
//	 "linkname_hex":"...","size":N,"mode":N,"uid":N,"gid":N,"sha256":"...","marker":false,
//	 "pax":{...}}
//
// Names are given as hex too, because JSON cannot carry bytes that are not UTF-8. "clean" is the
// path as moby's applier uses it (filepath.Clean of the name below the root).
//
// With -batch, standard input is a sequence of blobs, each preceded by its length (8 bytes,
// big-endian), and the listing of each follows the one before (each ends with its "end" line):
// one process for many blobs, for the differential fuzz test. "marker" says
// whether the entry's data, name, link target or pax records contain TEXT. The last line is
// {"end":"eof","compression":"...","entries":N} after a clean end of archive, or
// {"end":"error","error":"...","compression":"...","entries":N} when the reader fails (an engine
// then refuses the layer); the exit status is 0 in both cases, 2 for a usage or I/O error.
package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

type entry struct {
	Name        string            `json:"name"`
	NameHex     string            `json:"name_hex"`
	Clean       string            `json:"clean"`
	CleanHex    string            `json:"clean_hex"`
	Type        int               `json:"type"`
	Linkname    string            `json:"linkname"`
	LinknameHex string            `json:"linkname_hex"`
	Size        int64             `json:"size"`
	Mode        int64             `json:"mode"`
	UID         int               `json:"uid"`
	GID         int               `json:"gid"`
	SHA256      string            `json:"sha256"`
	Marker      bool              `json:"marker"`
	PAX         map[string]string `json:"pax,omitempty"`
}

type end struct {
	End         string `json:"end"`
	Error       string `json:"error,omitempty"`
	Compression string `json:"compression"`
	Entries     int    `json:"entries"`
}

// sniff names the compression of the stream from its first bytes, as the engines'
// DecompressStream does.
func sniff(head []byte) string {
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b, 0x08}):
		return "gzip"
	case bytes.HasPrefix(head, []byte{0x42, 0x5a, 0x68}):
		return "bzip2"
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return "zstd"
	case bytes.HasPrefix(head, []byte{0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00}):
		return "xz"
	}
	return "none"
}

// markerWriter hashes what it is given and looks for a marker across write boundaries.
type markerWriter struct {
	marker []byte
	tail   []byte
	found  bool
}

func (w *markerWriter) Write(p []byte) (int, error) {
	if len(w.marker) == 0 || w.found {
		return len(p), nil
	}
	joined := append(w.tail, p...)
	if bytes.Contains(joined, w.marker) {
		w.found = true
	}
	keep := len(w.marker) - 1
	if len(joined) > keep {
		joined = joined[len(joined)-keep:]
	}
	w.tail = append(w.tail[:0], joined...)
	return len(p), nil
}

func main() {
	marker := flag.String("marker", "", "report whether each entry contains this text")
	raw := flag.Bool("raw", false, "read the blob as a tar, without sniffing a compression")
	batch := flag.Bool("batch", false, "list length-prefixed blobs from standard input")
	flag.Parse()
	if flag.NArg() > 1 || (*batch && flag.NArg() > 0) {
		fmt.Fprintln(os.Stderr, "usage: tarlist [-marker TEXT] [-raw] [-batch | FILE]")
		os.Exit(2)
	}
	var in io.Reader = os.Stdin
	if flag.NArg() == 1 {
		f, err := os.Open(flag.Arg(0))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		defer f.Close()
		in = f
	}
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	var err error
	if *batch {
		err = listBatch(bufio.NewReaderSize(in, 1<<16), []byte(*marker), *raw, enc)
	} else {
		err = list(in, []byte(*marker), *raw, enc)
	}
	if err != nil {
		out.Flush()
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
}

// listBatch lists each length-prefixed blob of in, until in ends between two blobs.
func listBatch(in io.Reader, marker []byte, raw bool, enc *json.Encoder) error {
	var size [8]byte
	for {
		if _, err := io.ReadFull(in, size[:]); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		blob := make([]byte, binary.BigEndian.Uint64(size[:]))
		if _, err := io.ReadFull(in, blob); err != nil {
			return err
		}
		if err := list(bytes.NewReader(blob), marker, raw, enc); err != nil {
			return err
		}
	}
}

func list(in io.Reader, marker []byte, raw bool, enc *json.Encoder) error {
	buffered := bufio.NewReaderSize(in, 1<<16)
	compression := "none"
	if !raw {
		head, _ := buffered.Peek(6)
		compression = sniff(head)
	}
	var stream io.Reader = buffered
	switch compression {
	case "gzip":
		gz, err := gzip.NewReader(buffered)
		if err != nil {
			return enc.Encode(end{End: "error", Error: err.Error(), Compression: compression})
		}
		stream = gz
	case "bzip2":
		stream = bzip2.NewReader(buffered)
	case "zstd", "xz":
		return enc.Encode(end{End: "error", Error: "compression not read by this lister", Compression: compression})
	}
	tr := tar.NewReader(stream)
	count := 0
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return enc.Encode(end{End: "eof", Compression: compression, Entries: count})
		}
		if err != nil {
			return enc.Encode(end{End: "error", Error: err.Error(), Compression: compression, Entries: count})
		}
		count++
		found := &markerWriter{marker: marker}
		digest := sha256.New()
		if _, err := io.Copy(io.MultiWriter(digest, found), tr); err != nil {
			return enc.Encode(end{End: "error", Error: err.Error(), Compression: compression, Entries: count})
		}
		inMeta := len(marker) > 0 && (bytes.Contains([]byte(hdr.Name), marker) ||
			bytes.Contains([]byte(hdr.Linkname), marker))
		for key, value := range hdr.PAXRecords {
			if len(marker) > 0 && (bytes.Contains([]byte(key), marker) || bytes.Contains([]byte(value), marker)) {
				inMeta = true
			}
		}
		clean := filepath.Clean("/" + hdr.Name)
		e := entry{
			Name:        hdr.Name,
			NameHex:     hex.EncodeToString([]byte(hdr.Name)),
			Clean:       clean,
			CleanHex:    hex.EncodeToString([]byte(clean)),
			Type:        int(hdr.Typeflag),
			Linkname:    hdr.Linkname,
			LinknameHex: hex.EncodeToString([]byte(hdr.Linkname)),
			Size:        hdr.Size,
			Mode:        hdr.Mode,
			UID:         hdr.Uid,
			GID:         hdr.Gid,
			SHA256:      hex.EncodeToString(digest.Sum(nil)),
			Marker:      found.found || inMeta,
			PAX:         hdr.PAXRecords,
		}
		if err := enc.Encode(e); err != nil {
			return err
		}
	}
}
