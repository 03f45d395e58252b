// Package frame carries messages over a serial console line that also carries console text: boot banners,
// kernel messages, a login prompt, the board's logs. A frame is one line:
//
//	~FL<kind><session:4 hex><peer:4 hex><seq:8 hex><ack:8 hex><length:4 hex>:<payload, base64>:<crc32:8 hex>\n
//
// The fixed prefix "~FL" marks a frame wherever it starts on a line (after a prompt without a newline, say); the
// length and the CRC-32 over everything before the checksum detect a frame cut short, merged with console text
// or with one flipped bit. Base64 keeps the payload printable and free of newlines, so a frame survives a
// console that is not 8-bit clean and never looks like anything but a frame. Text that is not a frame is
// console output: it is handed on as such and can never become a message.
//
// On top of the frames a Session gives each side a reliable, ordered stream of messages: sequence numbers count
// payload bytes (as TCP's do), the receiver acknowledges cumulatively and keeps segments that arrive out of
// order, the sender resends what is not acknowledged in time or is reported missing, and shrinks its segments
// when frames get lost, so a noisy line still carries everything (see Session).
package frame

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"
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
	headerLen  = len(Prefix) + 1 + 4 + 4 + 8 + 8 + 4 + 1 // through the ':' before the payload
	trailerLen = 1 + 8                                   // ':' and the checksum, before the newline
)

// Overhead is the bytes a frame adds to its encoded payload, newline included.
const Overhead = headerLen + trailerLen + 1

var enc = base64.RawStdEncoding

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

// EncodedLen is the length of the line Append writes for a payload of n bytes.
func EncodedLen(n int) int { return Overhead + enc.EncodedLen(n) }

// Append appends f as one line, newline included, to dst. A payload over MaxPayload panics: callers segment.
func Append(dst []byte, f Frame) []byte {
	if len(f.Payload) > MaxPayload {
		panic(fmt.Sprintf("frame: payload of %d bytes exceeds %d", len(f.Payload), MaxPayload))
	}
	start := len(dst)
	dst = append(dst, Prefix...)
	dst = append(dst, byte(f.Kind))
	dst = appendHex(dst, uint64(f.Session), 4)
	dst = appendHex(dst, uint64(f.Peer), 4)
	dst = appendHex(dst, uint64(f.Seq), 8)
	dst = appendHex(dst, uint64(f.Ack), 8)
	n := enc.EncodedLen(len(f.Payload))
	dst = appendHex(dst, uint64(n), 4)
	dst = append(dst, ':')
	dst = enc.AppendEncode(dst, f.Payload)
	dst = append(dst, ':')
	sum := crc32.ChecksumIEEE(dst[start:])
	dst = appendHex(dst, uint64(sum), 8)
	return append(dst, '\n')
}

func appendHex(dst []byte, v uint64, width int) []byte {
	for i := width - 1; i >= 0; i-- {
		dst = append(dst, "0123456789abcdef"[(v>>(4*i))&0xf])
	}
	return dst
}

// Decode decodes one frame from line, which starts with Prefix; a trailing newline (and carriage return) is
// allowed. The payload is a fresh slice.
func Decode(line []byte) (Frame, error) {
	line = bytes.TrimRight(line, "\r\n")
	var f Frame
	if len(line) < headerLen+trailerLen || !bytes.HasPrefix(line, []byte(Prefix)) {
		return f, ErrMalformed
	}
	body, sumText := line[:len(line)-8], line[len(line)-8:]
	sum, ok := parseHex(sumText)
	if !ok || body[len(body)-1] != ':' {
		return f, ErrMalformed
	}
	if crc32.ChecksumIEEE(body) != uint32(sum) {
		return f, ErrChecksum
	}
	h := line[len(Prefix):headerLen]
	f.Kind = Kind(h[0])
	switch f.Kind {
	case Hello, Welcome, Data, Sack, Reset:
	default:
		return f, ErrMalformed
	}
	fields := [4]uint64{}
	at := 1
	for i, w := range [4]int{4, 4, 8, 8} {
		v, ok := parseHex(h[at : at+w])
		if !ok {
			return f, ErrMalformed
		}
		fields[i], at = v, at+w
	}
	n, ok := parseHex(h[at : at+4])
	if !ok || h[at+4] != ':' {
		return f, ErrMalformed
	}
	payload := body[headerLen : len(body)-1]
	if uint64(len(payload)) != n || enc.DecodedLen(len(payload)) > MaxPayload {
		return f, ErrMalformed
	}
	dec, err := enc.DecodeString(string(payload))
	if err != nil {
		return f, ErrMalformed
	}
	f.Session, f.Peer = uint16(fields[0]), uint16(fields[1])
	f.Seq, f.Ack = uint32(fields[2]), uint32(fields[3])
	if len(dec) > 0 {
		f.Payload = dec
	}
	return f, nil
}

// parseHex parses lower-case hex digits, as Append writes them.
func parseHex(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 16 {
		return 0, false
	}
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return 0, false
		}
	}
	v, err := strconv.ParseUint(string(b), 16, 64)
	return v, err == nil
}
