package frame

import "bytes"

// maxLine is the longest frame line: a longer run of text holding the prefix is not a frame.
var maxLine = EncodedLen(MaxPayload)

// Splitter separates the bytes read from a console line into console text and frame lines. Console text is
// handed on as soon as it is known not to start a frame — a prompt without a newline shows at once — and a
// frame line only once its newline has arrived. It is not safe for concurrent use.
type Splitter struct {
	// Console receives console text in order, in pieces (not necessarily whole lines). The slice is only valid
	// during the call.
	Console func(text []byte)
	// Frame receives each line that holds a frame: from its last Prefix to the end, without the newline. The
	// slice is only valid during the call.
	Frame func(line []byte)
	// Damaged is called for the text of a frame that cannot be whole: a prefix followed by another one on the
	// same line (noise ate a newline), or a frame line longer than any frame.
	Damaged func()

	line    []byte // the current line, not yet ended
	flushed int    // bytes of line already handed on as console text
}

var prefix = []byte(Prefix)

// Write feeds bytes read from the line; it never fails.
func (s *Splitter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			s.line = append(s.line, p...)
			s.partial()
			break
		}
		s.line = append(s.line, p[:i+1]...)
		p = p[i+1:]
		s.complete()
	}
	return n, nil
}

// complete handles the current line, which ends with a newline.
func (s *Splitter) complete() {
	line := s.line
	rest := line[s.flushed:]
	if i := bytes.Index(rest, prefix); i < 0 {
		s.console(rest)
	} else {
		s.console(rest[:i])
		f := bytes.TrimRight(rest[i:], "\r\n")
		if last := bytes.LastIndex(f, prefix); last > 0 {
			s.damaged()
			f = f[last:]
		}
		if len(f) > maxLine {
			s.damaged()
		} else if s.Frame != nil {
			s.Frame(f)
		}
	}
	s.line, s.flushed = s.line[:0], 0
}

// partial hands on the console text of an unfinished line up to where a frame could start.
func (s *Splitter) partial() {
	rest := s.line[s.flushed:]
	hold := len(rest)
	if i := bytes.Index(rest, prefix); i >= 0 {
		hold = i
		if len(rest)-i > maxLine {
			// No frame is this long: what was held is console text after all (it will never decode).
			s.damaged()
			s.flushed = len(s.line)
			return
		}
	} else {
		for k := len(prefix) - 1; k > 0; k-- {
			if bytes.HasSuffix(rest, prefix[:k]) {
				hold = len(rest) - k
				break
			}
		}
	}
	s.console(rest[:hold])
	s.flushed += hold
	if s.flushed > 64<<10 && s.flushed == len(s.line) {
		s.line, s.flushed = s.line[:0], 0 // a very long console line: keep no more than we must
	}
}

func (s *Splitter) console(b []byte) {
	if len(b) > 0 && s.Console != nil {
		s.Console(b)
	}
}

func (s *Splitter) damaged() {
	if s.Damaged != nil {
		s.Damaged()
	}
}
