package scfs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"sconify/runtime_shim/internal/kdf"
)

const (
	headerSize   = 36
	fileIDSize   = 16
	maxChunkSize = 16 << 20
	magic        = "SCFS1\x00"
	fileInfo     = "scfs v1 file"
)

// DecryptFile verifies and decrypts one SCFS v1 ciphertext from src into dst, one chunk at a
// time: the header must name fileID and size, every chunk must authenticate at its index, the
// last one must carry the last flag, and nothing may follow it. Bytes already written to dst
// when an error is returned belong to authenticated chunks, but the file as a whole is not.
func DecryptFile(dst io.Writer, src io.Reader, volumeKey, fileID []byte, size uint64) error {
	header := make([]byte, headerSize)
	if _, err := io.ReadFull(src, header); err != nil {
		return readError(err, "its header is truncated")
	}
	switch {
	case string(header[:6]) != magic:
		return fmt.Errorf("it is not an SCFS v1 file (bad magic)")
	case header[6] != 1:
		return fmt.Errorf("SCFS version %d is not supported", header[6])
	case header[7] != 0:
		return fmt.Errorf("its header has unknown flags %#x", header[7])
	case !bytes.Equal(header[8:24], fileID):
		return fmt.Errorf("its header names another file (blobs swapped?)")
	}
	chunkSize := uint64(binary.BigEndian.Uint32(header[24:28]))
	if chunkSize == 0 || chunkSize > maxChunkSize {
		return fmt.Errorf("its chunk size %d is outside [1, %d]", chunkSize, maxChunkSize)
	}
	if got := binary.BigEndian.Uint64(header[28:36]); got != size {
		return fmt.Errorf("its header says %d bytes where the volume metadata says %d", got, size)
	}

	key := kdf.HKDF(volumeKey, append([]byte(fileInfo), fileID...))
	defer kdf.Zero(key)
	aead, err := newGCM(key)
	if err != nil {
		return err
	}
	chunks := (size + chunkSize - 1) / chunkSize
	if chunks == 0 {
		chunks = 1 // an empty file is one empty final chunk
	}
	buf := make([]byte, chunkSize+gcmTagSize)
	defer kdf.Zero(buf)
	nonce := make([]byte, gcmNonceSize)
	aad := make([]byte, headerSize+9)
	copy(aad, header)
	remaining := size
	for i := uint64(0); i < chunks; i++ {
		plainLen := chunkSize
		if remaining < plainLen {
			plainLen = remaining
		}
		sealed := buf[:plainLen+gcmTagSize]
		if _, err := io.ReadFull(src, sealed); err != nil {
			return readError(err, fmt.Sprintf("it ends inside chunk %d of %d (truncated)", i, chunks))
		}
		binary.BigEndian.PutUint64(nonce[4:], i)
		binary.BigEndian.PutUint64(aad[headerSize:], i)
		aad[headerSize+8] = 0
		if i == chunks-1 {
			aad[headerSize+8] = 1
		}
		plain, err := aead.Open(sealed[:0], nonce, sealed, aad)
		if err != nil {
			return fmt.Errorf("chunk %d of %d failed authentication", i, chunks)
		}
		if _, err := dst.Write(plain); err != nil {
			return fmt.Errorf("writing its plaintext: %v", err)
		}
		remaining -= plainLen
	}
	var extra [1]byte
	if _, err := io.ReadFull(src, extra[:]); !errors.Is(err, io.EOF) {
		return readError(err, "it has data after its last chunk")
	}
	return nil
}

// readError describes a failed read: running out of data is the file's fault (truncation,
// or trailing data when err is nil), anything else is the disk's.
func readError(err error, short string) error {
	if err == nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New(short)
	}
	return fmt.Errorf("reading it: %v", err)
}
