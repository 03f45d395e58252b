package frame

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestAppendDecodeRoundTrip(t *testing.T) {
	for _, f := range []Frame{
		{Kind: Hello, Session: 0xbeef, Payload: []byte("robot-0001")},
		{Kind: Welcome, Session: 1, Peer: 0xbeef},
		{Kind: Data, Session: 7, Peer: 9, Seq: 0xfffffff0, Ack: 42, Payload: bytes.Repeat([]byte{0, 0xff, '\n', '~'}, 1024)},
		{Kind: Data, Session: 7, Peer: 9, Seq: 3, Ack: 4},
		{Kind: Reset, Session: 2, Peer: 3},
	} {
		line := Append(nil, f)
		if n := EncodedLen(len(f.Payload)); len(line) > n || len(line) < n-4*bytes.Count(line, []byte("z")) {
			t.Errorf("EncodedLen(%d) = %d, line is %d", len(f.Payload), n, len(line))
		}
		if bytes.Count(line, []byte("\n")) != 1 || line[len(line)-1] != '\n' {
			t.Fatalf("frame is not one line: %q", line)
		}
		got, err := Decode(line)
		if err != nil {
			t.Fatalf("Decode(%q): %v", line, err)
		}
		if got.Kind != f.Kind || got.Session != f.Session || got.Peer != f.Peer || got.Seq != f.Seq ||
			got.Ack != f.Ack || !bytes.Equal(got.Payload, f.Payload) {
			t.Errorf("round trip: got %+v, want %+v", got, f)
		}
	}
}

func TestDecodeDetectsEveryChangedByte(t *testing.T) {
	line := Append(nil, Frame{Kind: Data, Session: 1, Peer: 2, Seq: 100, Ack: 200, Payload: []byte("GET /things/robot/jobs")})
	line = line[:len(line)-1]
	for i := range line {
		for _, b := range []byte{line[i] ^ 0x01, line[i] ^ 0x80, 'A', '0', ':'} {
			if b == line[i] {
				continue
			}
			bad := bytes.Clone(line)
			bad[i] = b
			if _, err := Decode(bad); err == nil {
				t.Fatalf("byte %d changed to %q: decoded anyway", i, b)
			}
		}
	}
	for n := range len(line) {
		if _, err := Decode(line[:n]); err == nil {
			t.Fatalf("frame cut to %d bytes decoded", n)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	good := Append(nil, Frame{Kind: Data, Session: 1, Peer: 2, Payload: []byte("x")})
	bad := bytes.Clone(good)
	bad[len(Prefix)+10] ^= 1
	for _, c := range []struct {
		line string
		want error
	}{
		{"", ErrMalformed},
		{"~FL", ErrMalformed},
		{"login: hello", ErrMalformed},
		{string(bad), ErrChecksum},
		{"~FLX" + string(good[4:]), ErrMalformed},                   // no such kind
		{string(good[:10]) + " " + string(good[10:]), ErrMalformed}, // a space, which ascii85 would skip
		{string(good[:10]) + "~" + string(good[11:]), ErrMalformed}, // outside ascii85
		{string(good[:len(good)-3]) + "\n", ErrMalformed},
		{"~FLD" + strings.Repeat("!", EncodedLen(MaxPayload)), ErrMalformed}, // longer than any frame
	} {
		if _, err := Decode([]byte(c.line)); !errors.Is(err, c.want) {
			t.Errorf("Decode(%q) = %v, want %v", c.line, err, c.want)
		}
	}
}

func TestSplitterSeparatesConsoleAndFrames(t *testing.T) {
	f1 := Append(nil, Frame{Kind: Hello, Session: 5, Payload: []byte("robot-0001")})
	f2 := Append(nil, Frame{Kind: Data, Session: 5, Peer: 6, Payload: []byte("{}")})
	input := "U-Boot 2024.01\r\nStarting kernel ...\nrobot-0001 login: " + string(f1) + "user@board:~$ ls ~F\n" +
		string(f2[:20]) + string(f2) + "[ 12.5] usb 1-1: new device\n"
	var console strings.Builder
	var frames [][]byte
	damaged := 0
	var sp Splitter
	sp.Console = func(b []byte) { console.Write(b) }
	sp.Frame = func(l []byte) { frames = append(frames, bytes.Clone(l)) }
	sp.Damaged = func() { damaged++ }
	// Byte by byte: the prompt must show before its line ends, and nothing depends on how reads cut the input.
	sawPrompt := false
	for i := range len(input) {
		sp.Write([]byte{input[i]})
		if strings.HasSuffix(console.String(), "login: ") {
			sawPrompt = true
		}
	}
	if !sawPrompt {
		t.Error("the prompt without a newline never showed as console text")
	}
	want := "U-Boot 2024.01\r\nStarting kernel ...\nrobot-0001 login: user@board:~$ ls ~F\n[ 12.5] usb 1-1: new device\n"
	if console.String() != want {
		t.Errorf("console = %q, want %q", console.String(), want)
	}
	if len(frames) != 2 {
		t.Fatalf("got %d frames, want 2: %q", len(frames), frames)
	}
	for i, want := range [][]byte{f1, f2} {
		if !bytes.Equal(frames[i], want[:len(want)-1]) {
			t.Errorf("frame %d = %q, want %q", i, frames[i], want)
		}
	}
	if damaged != 1 {
		t.Errorf("damaged = %d, want 1 (the frame cut short and merged with the next)", damaged)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(Append(nil, Frame{Kind: Data, Session: 1, Peer: 2, Seq: 3, Ack: 4, Payload: []byte("hello")}))
	f.Add(Append(nil, Frame{Kind: Hello, Session: 0xffff}))
	f.Add([]byte("~FLDzzz!!!!!"))
	f.Add([]byte("login: ~FLW"))
	f.Fuzz(func(t *testing.T, line []byte) {
		fr, err := Decode(line)
		if err != nil {
			return
		}
		// Whatever decodes is a frame that encodes to a line that decodes the same (ascii85 has more than one
		// spelling of a last partial group, and of four zero bytes; the checksum is over the bytes).
		again := Append(nil, fr)
		fr2, err := Decode(again)
		if err != nil || fr2.Kind != fr.Kind || fr2.Session != fr.Session || fr2.Peer != fr.Peer || fr2.Seq != fr.Seq ||
			fr2.Ack != fr.Ack || !bytes.Equal(fr2.Payload, fr.Payload) {
			t.Fatalf("decoded %q as %+v, which encodes as %q, which decodes as %+v, %v", line, fr, again, fr2, err)
		}
		var sp Splitter
		var got [][]byte
		sp.Frame = func(l []byte) { got = append(got, bytes.Clone(l)) }
		sp.Console = func(b []byte) {
			if bytes.Contains(b, []byte(Prefix)) {
				t.Fatalf("console text %q holds a frame prefix", b)
			}
		}
		sp.Write(line)
		sp.Write([]byte("\n"))
	})
}
