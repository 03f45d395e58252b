// Package frame carries messages over a serial console line that also carries console text: boot banners,
// kernel messages, a login prompt, the board's logs. A frame is one line:
//
//	~FL<kind><body, ascii85>\n
//	body: session:2 peer:2 seq:4 ack:4 length:2 payload:length crc32:4   (binary, big-endian)
//
// The fixed prefix "~FL" marks a frame wherever it starts on a line (after a prompt without a newline, say); the
// length and the CRC-32 over the kind and everything before the checksum detect a frame cut short, merged with
// console text or with one byte changed. Ascii85 keeps the body printable ('!' to 'u', and 'z'), free of spaces,
// newlines and '~', so a frame survives a console that is not 8-bit clean, never holds a second prefix, and never
// looks like anything but a frame. It is the densest of the standard printable encodings: five characters for
// four bytes, where base64 takes four for three (80 % of the line's bytes carry the body, not 75 %). Text that is
// not a frame is console output: it is handed on as such and can never become a message.
//
// On top of the frames a Session gives each side a reliable, ordered stream of messages (see Session).
package frame

import (
	"bytes"
	"encoding/ascii85"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Prefix starts every frame.
const Prefix = "~FL"

// Kind says what a frame does.
type Kind byte

// The kinds of frame.
const (
	// Hello opens a session: the board side sends it, with its hello payload, until it is welcomed.
	Hello Kind = 'H'
	// Welcome answers a Hello; Peer is the session it welcomes.
	Welcome Kind = 'W'
	// Data carries payload bytes from Seq on and acknowledges the peer's bytes up to Ack; with no payload it is
	// an acknowledgement alone.
	Data Kind = 'D'
	// Sack acknowledges the peer's bytes up to Ack; its payload lists the ranges received beyond that (selective
	// acknowledgement, see Session).
	Sack Kind = 'A'
	// Reset tells the peer that the session its frames name is unknown here: it must say Hello again.
	Reset Kind = 'R'
)

// MaxPayload bounds one frame's payload, in bytes before encoding.
const MaxPayload = 4096

const (
	headLen = 2 + 2 + 4 + 4 + 2 // session, peer, seq, ack, length
	sumLen  = 4
	// bodyOverhead is the binary bytes a body adds to its payload.
	bodyOverhead = headLen + sumLen
	// lineOverhead is the bytes a frame line adds to its encoded body: prefix, kind, newline.
	lineOverhead = len(Prefix) + 1 + 1
)

// EncodedLen is the length of the line Append writes for a payload of n bytes, at most: ascii85 writes a group
// of four bytes as five characters, a last group of k < 4 as k+1, and an all-zero group of four as 'z'.
func EncodedLen(n int) int {
	n += bodyOverhead
	last := n % 4
	if last > 0 {
		last++
	}
	return lineOverhead + 5*(n/4) + last
}

// Frame is one decoded frame.
type Frame struct {
	Kind Kind
	// Session is the sender's session; Peer the receiver's, as the sender knows it (0 before it knows one).
	Session, Peer uint16
	// Seq is the stream offset of Payload's first byte; Ack the next offset the sender expects from the peer.
	Seq, Ack uint32
	Payload  []byte
}

// Errors of Decode.
var (
	// ErrMalformed is a line that starts like a frame but is not one: cut short, too long, a bad field.
	ErrMalformed = errors.New("malformed frame")
	// ErrChecksum is a frame whose checksum does not match: a byte changed on the line.
	ErrChecksum = errors.New("frame checksum mismatch")
)

// Append appends f as one line, newline included, to dst. A payload over MaxPayload panics: callers segment.
func Append(dst []byte, f Frame) []byte {
	if len(f.Payload) > MaxPayload {
		panic(fmt.Sprintf("frame: payload of %d bytes exceeds %d", len(f.Payload), MaxPayload))
	}
	body := make([]byte, headLen, bodyOverhead+len(f.Payload))
	binary.BigEndian.PutUint16(body[0:], f.Session)
	binary.BigEndian.PutUint16(body[2:], f.Peer)
	binary.BigEndian.PutUint32(body[4:], f.Seq)
	binary.BigEndian.PutUint32(body[8:], f.Ack)
	binary.BigEndian.PutUint16(body[12:], uint16(len(f.Payload)))
	body = append(body, f.Payload...)
	body = binary.BigEndian.AppendUint32(body, checksum(f.Kind, body))
	dst = append(dst, Prefix...)
	dst = append(dst, byte(f.Kind))
	at := len(dst)
	dst = append(dst, make([]byte, ascii85.MaxEncodedLen(len(body)))...)
	n := ascii85.Encode(dst[at:], body)
	return append(dst[:at+n], '\n')
}

// checksum is the CRC-32 (IEEE) of the kind and the body before its checksum.
func checksum(k Kind, body []byte) uint32 {
	return crc32.Update(crc32.ChecksumIEEE([]byte{byte(k)}), crc32.IEEETable, body)
}

// Decode decodes one frame from line, which starts with Prefix; a trailing newline (and carriage return) is
// allowed. The payload is a fresh slice.
func Decode(line []byte) (Frame, error) {
	line = bytes.TrimRight(line, "\r\n")
	var f Frame
	if !bytes.HasPrefix(line, []byte(Prefix)) || len(line) < len(Prefix)+1 ||
		len(line) > EncodedLen(MaxPayload)-1 {
		return f, ErrMalformed
	}
	f.Kind = Kind(line[len(Prefix)])
	switch f.Kind {
	case Hello, Welcome, Data, Sack, Reset:
	default:
		return f, ErrMalformed
	}
	text := line[len(Prefix)+1:]
	for _, c := range text {
		// Only what Append writes: no spaces or line breaks, which ascii85 would skip.
		if !(c >= '!' && c <= 'u' || c == 'z') {
			return f, ErrMalformed
		}
	}
	body := make([]byte, 4*len(text)) // 'z' stands for four bytes
	n, used, err := ascii85.Decode(body, text, true)
	if err != nil || used != len(text) || n < bodyOverhead {
		return f, ErrMalformed
	}
	body = body[:n]
	if int(binary.BigEndian.Uint16(body[12:])) != n-bodyOverhead {
		return f, ErrMalformed
	}
	if checksum(f.Kind, body[:n-sumLen]) != binary.BigEndian.Uint32(body[n-sumLen:]) {
		return f, ErrChecksum
	}
	f.Session = binary.BigEndian.Uint16(body[0:])
	f.Peer = binary.BigEndian.Uint16(body[2:])
	f.Seq = binary.BigEndian.Uint32(body[4:])
	f.Ack = binary.BigEndian.Uint32(body[8:])
	if p := body[headLen : n-sumLen]; len(p) > 0 {
		f.Payload = bytes.Clone(p)
	}
	return f, nil
}
