package artifacts

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/fleetlab/fleetlab/sim/awsapi"
)

// The aws-chunked content encoding, in which the SDKs send a body whose checksum they compute while sending
// it (x-amz-content-sha256: STREAMING-UNSIGNED-PAYLOAD-TRAILER) or whose chunks they sign one by one
// (STREAMING-AWS4-HMAC-SHA256-PAYLOAD and its -TRAILER variant):
//
//	<size in hex>[;chunk-signature=<sig>]\r\n
//	<size bytes>\r\n
//	... more chunks ...
//	0[;chunk-signature=<sig>]\r\n
//	[<trailer name>:<value>\r\n ...]
//	\r\n
//
// Chunk signatures are verified when the service checks signatures: the request then carries a ChunkSigner
// (awsapi.ChunkSignerOf), every chunk must be signed, each signature is checked at the end of its chunk, and a
// trailer signature (x-amz-trailer-signature) over the trailers before it. Bytes of a chunk are handed on before
// its signature is checked, so a bad signature fails the read that ends the chunk, and the upload with it.

// Limits on the framing, so a hostile body cannot make the decoder hold much memory.
const (
	maxChunkLine    = 4096      // one chunk header or trailer line
	maxTrailerBytes = 16 << 10  // all trailer lines together
	chunkedBufSize  = 256 << 10 // the decoder's read buffer
)

var (
	errMalformedChunk = errors.New("malformed aws-chunked body")
	errChunkSignature = errors.New("a chunk signature does not match")
)

// chunkedReader decodes an aws-chunked body. Once Read has returned io.EOF, Trailer holds the trailers.
type chunkedReader struct {
	br      *bufio.Reader
	left    int64 // bytes of the current chunk still to read
	inChunk bool  // a chunk has begun, so its closing CRLF is due once left is zero
	trailer http.Header
	err     error // sticky: io.EOF at the end, or what went wrong

	signer awsapi.ChunkSigner // nil: signatures are not checked
	sig    string             // the current chunk's signature
	sum    hash.Hash          // of the current chunk's data
}

// newChunkedReader decodes r; signer, when not nil, checks every chunk's signature.
func newChunkedReader(r io.Reader, signer awsapi.ChunkSigner) *chunkedReader {
	c := &chunkedReader{br: bufio.NewReaderSize(r, chunkedBufSize), signer: signer}
	if signer != nil {
		c.sum = sha256.New()
	}
	return c
}

// Trailer returns the trailers, canonicalised; nil before the end of the body.
func (c *chunkedReader) Trailer() http.Header { return c.trailer }

func (c *chunkedReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if c.left == 0 {
		if err := c.next(); err != nil {
			c.err = err
			return 0, err
		}
		if c.left == 0 { // the final chunk and the trailers are read
			c.err = io.EOF
			return 0, io.EOF
		}
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.br.Read(p)
	c.left -= int64(n)
	if c.sum != nil {
		c.sum.Write(p[:n])
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		c.err = err
	}
	return n, err
}

// next finishes the current chunk and reads the header of the next; for the final chunk it reads the trailers.
func (c *chunkedReader) next() error {
	if c.inChunk {
		var crlf [2]byte
		if _, err := io.ReadFull(c.br, crlf[:]); err != nil {
			return unexpected(err)
		}
		if crlf != [2]byte{'\r', '\n'} {
			return fmt.Errorf("%w: chunk data not followed by CRLF", errMalformedChunk)
		}
		c.inChunk = false
		if err := c.checkChunk(); err != nil {
			return err
		}
	}
	line, err := c.line()
	if err != nil {
		return err
	}
	var ext []byte
	if i := bytes.IndexByte(line, ';'); i >= 0 {
		line, ext = line[:i], line[i+1:] // chunk extensions, such as chunk-signature
	}
	size, err := strconv.ParseUint(string(line), 16, 62)
	if err != nil {
		return fmt.Errorf("%w: bad chunk size %.32q", errMalformedChunk, line)
	}
	if c.signer != nil {
		sig, ok := bytes.CutPrefix(ext, []byte("chunk-signature="))
		if !ok {
			return fmt.Errorf("%w: chunk without a chunk-signature", errChunkSignature)
		}
		c.sig = string(sig)
	}
	if size > 0 {
		c.left, c.inChunk = int64(size), true
		return nil
	}
	if err := c.checkChunk(); err != nil { // the final, empty chunk is signed too
		return err
	}
	return c.readTrailer()
}

// checkChunk checks the signature of the chunk just read, when signatures are checked.
func (c *chunkedReader) checkChunk() error {
	if c.signer == nil {
		return nil
	}
	var sum [sha256.Size]byte
	c.sum.Sum(sum[:0])
	c.sum.Reset()
	if !c.signer.Chunk(sum, c.sig) {
		return errChunkSignature
	}
	return nil
}

func (c *chunkedReader) readTrailer() error {
	c.trailer = http.Header{}
	total := 0
	var signed []byte // the trailers as their signature covers them
	for {
		line, err := c.line()
		if errors.Is(err, io.ErrUnexpectedEOF) && total == 0 {
			return nil // some encoders end the body right after the final chunk
		}
		if err != nil {
			return err
		}
		if len(line) == 0 {
			if c.signer != nil && len(signed) > 0 {
				return fmt.Errorf("%w: trailers without x-amz-trailer-signature", errChunkSignature)
			}
			return nil
		}
		if total += len(line); total > maxTrailerBytes {
			return fmt.Errorf("%w: trailers too long", errMalformedChunk)
		}
		name, value, ok := bytes.Cut(line, []byte{':'})
		name = bytes.TrimSpace(name)
		if !ok || len(name) == 0 {
			return fmt.Errorf("%w: bad trailer line %.32q", errMalformedChunk, line)
		}
		value = bytes.TrimSpace(value)
		if c.signer != nil {
			if strings.EqualFold(string(name), "x-amz-trailer-signature") {
				if !c.signer.Trailer(signed, string(value)) {
					return errChunkSignature
				}
				signed = nil
				continue
			}
			signed = fmt.Appendf(signed, "%s:%s\n", strings.ToLower(string(name)), value)
		}
		c.trailer.Add(string(name), string(value))
	}
}

// line reads one CRLF-terminated line and returns it without the CRLF. The slice is valid until the next read.
func (c *chunkedReader) line() ([]byte, error) {
	line, err := c.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) || len(line) > maxChunkLine {
		return nil, fmt.Errorf("%w: line too long", errMalformedChunk)
	}
	if err != nil {
		return nil, unexpected(err)
	}
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return nil, fmt.Errorf("%w: line not ended by CRLF", errMalformedChunk)
	}
	return line[:len(line)-2], nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
