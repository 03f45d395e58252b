package artifacts

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
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
// Chunk signatures are not verified: the service accepts unsigned requests.

// Limits on the framing, so a hostile body cannot make the decoder hold much memory.
const (
	maxChunkLine    = 4096      // one chunk header or trailer line
	maxTrailerBytes = 16 << 10  // all trailer lines together
	chunkedBufSize  = 256 << 10 // the decoder's read buffer
)

var errMalformedChunk = errors.New("malformed aws-chunked body")

// chunkedReader decodes an aws-chunked body. Once Read has returned io.EOF, Trailer holds the trailers.
type chunkedReader struct {
	br      *bufio.Reader
	left    int64 // bytes of the current chunk still to read
	inChunk bool  // a chunk has begun, so its closing CRLF is due once left is zero
	trailer http.Header
	err     error // sticky: io.EOF at the end, or what went wrong
}

func newChunkedReader(r io.Reader) *chunkedReader {
	return &chunkedReader{br: bufio.NewReaderSize(r, chunkedBufSize)}
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
	}
	line, err := c.line()
	if err != nil {
		return err
	}
	if i := bytes.IndexByte(line, ';'); i >= 0 {
		line = line[:i] // chunk extensions, such as chunk-signature
	}
	size, err := strconv.ParseUint(string(line), 16, 62)
	if err != nil {
		return fmt.Errorf("%w: bad chunk size %.32q", errMalformedChunk, line)
	}
	if size > 0 {
		c.left, c.inChunk = int64(size), true
		return nil
	}
	return c.readTrailer()
}

func (c *chunkedReader) readTrailer() error {
	c.trailer = http.Header{}
	total := 0
	for {
		line, err := c.line()
		if errors.Is(err, io.ErrUnexpectedEOF) && total == 0 {
			return nil // some encoders end the body right after the final chunk
		}
		if err != nil {
			return err
		}
		if len(line) == 0 {
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
		c.trailer.Add(string(name), string(bytes.TrimSpace(value)))
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
