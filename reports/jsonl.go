package reports

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// MaxLine bounds one line of events.jsonl; a longer line is an error, never a reason to buffer without end.
const MaxLine = 1 << 20

// JSONLines is the sink that writes records as JSON lines (events.jsonl), one record a line, flushed at least
// every FlushEvery so that a follower (fleetlab report serve) sees the run as it goes.
type JSONLines struct {
	w      io.Writer
	closer io.Closer // the file, when the sink created it

	mu    sync.Mutex
	buf   *bufio.Writer
	err   error
	stop  chan struct{}
	done  chan struct{}
	dirty bool
}

// FlushEvery is how often a JSONLines sink flushes what it buffered.
const FlushEvery = 200 * time.Millisecond

var _ Sink = (*JSONLines)(nil)

// NewJSONLines returns a sink writing to w; Stop flushes but does not close w.
func NewJSONLines(w io.Writer) *JSONLines { return &JSONLines{w: w} }

// CreateJSONLines returns a sink writing to a new file at path (an existing file is truncated); Stop closes it.
func CreateJSONLines(path string) (*JSONLines, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create events file: %w", err)
	}
	return &JSONLines{w: f, closer: f}, nil
}

// Start implements Sink.
func (j *JSONLines) Start(RunInfo) error {
	j.buf = bufio.NewWriterSize(j.w, 64<<10)
	j.stop, j.done = make(chan struct{}), make(chan struct{})
	go j.flusher()
	return nil
}

func (j *JSONLines) flusher() {
	defer close(j.done)
	t := time.NewTicker(FlushEvery)
	defer t.Stop()
	for {
		select {
		case <-j.stop:
			return
		case <-t.C:
			j.mu.Lock()
			if j.dirty && j.err == nil {
				j.err = j.buf.Flush()
				j.dirty = false
			}
			j.mu.Unlock()
		}
	}
}

// Add implements Sink.
func (j *JSONLines) Add(records []Record) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.err != nil {
		return
	}
	for _, r := range records {
		b, err := json.Marshal(r)
		if err != nil {
			j.err = fmt.Errorf("encode record %d: %w", r.Seq, err)
			return
		}
		b = append(b, '\n')
		if _, err := j.buf.Write(b); err != nil {
			j.err = fmt.Errorf("write events: %w", err)
			return
		}
	}
	j.dirty = true
}

// Stop implements Sink: it flushes, and closes the file the sink created.
func (j *JSONLines) Stop() error {
	close(j.stop)
	<-j.done
	j.mu.Lock()
	defer j.mu.Unlock()
	err := j.err
	if err == nil {
		if err = j.buf.Flush(); err != nil {
			err = fmt.Errorf("write events: %w", err)
		}
	}
	if j.closer != nil {
		if cerr := j.closer.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close events file: %w", cerr)
		}
	}
	return err
}

// Reader reads records from events.jsonl. Blank lines are skipped; anything else that is not a record of a
// version this package reads is an error naming the line.
type Reader struct {
	sc   *bufio.Scanner
	line int
}

// NewReader returns a reader of r.
func NewReader(r io.Reader) *Reader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxLine)
	return &Reader{sc: sc}
}

// Next returns the next record, or io.EOF after the last.
func (rd *Reader) Next() (Record, error) {
	for rd.sc.Scan() {
		rd.line++
		line := bytes.TrimSpace(rd.sc.Bytes())
		if len(line) == 0 {
			continue
		}
		rec, err := ParseRecord(line)
		if err != nil {
			return Record{}, fmt.Errorf("line %d: %w", rd.line, err)
		}
		return rec, nil
	}
	if err := rd.sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return Record{}, fmt.Errorf("line %d: longer than %d bytes", rd.line+1, MaxLine)
		}
		return Record{}, fmt.Errorf("line %d: %w", rd.line+1, err)
	}
	return Record{}, io.EOF
}

// ReadAll reads every record of r.
func ReadAll(r io.Reader) ([]Record, error) {
	rd := NewReader(r)
	var out []Record
	for {
		rec, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, rec)
	}
}

// ParseRecord decodes one line of events.jsonl and checks what every record must have.
func ParseRecord(line []byte) (Record, error) {
	var rec Record
	dec := json.NewDecoder(bytes.NewReader(line))
	if err := dec.Decode(&rec); err != nil {
		return Record{}, fmt.Errorf("not a record: %w", err)
	}
	if dec.More() {
		return Record{}, errors.New("not a record: more than one JSON value on the line")
	}
	switch {
	case rec.V < 1:
		return Record{}, fmt.Errorf("record without a schema version (\"v\"): is this an events.jsonl file?")
	case rec.V > Version:
		return Record{}, fmt.Errorf("record of schema version %d: this fleetlab reads version %d and older; use a newer fleetlab", rec.V, Version)
	case rec.Seq == 0:
		return Record{}, errors.New("record without a sequence number (\"seq\")")
	case rec.Kind == "":
		return Record{}, fmt.Errorf("record %d without a kind", rec.Seq)
	case rec.Run == "":
		return Record{}, fmt.Errorf("record %d without a run", rec.Seq)
	}
	return rec, nil
}

// Follow reads the records of the file at path and calls fn with each in order, then, while ctx lasts, keeps
// reading what is appended to the file, as tail -f does; a line still being written is read once its newline
// arrives. It returns nil when a run.ended record ends the file's last run (the run is over), ctx's error when
// ctx ends first, or the first read or parse error. poll is how often it looks for more (0: 100 ms).
func Follow(ctx context.Context, path string, poll time.Duration, fn func(Record)) error {
	if poll <= 0 {
		poll = 100 * time.Millisecond
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var pending []byte
	buf := make([]byte, 64<<10)
	line := 0
	open := map[string]bool{} // runs started and not ended
	ended := false
	ticker := time.NewTicker(poll)
	defer ticker.Stop()
	for {
		n, err := f.Read(buf)
		pending = append(pending, buf[:n]...)
		for {
			i := bytes.IndexByte(pending, '\n')
			if i < 0 {
				break
			}
			raw := bytes.TrimSpace(pending[:i])
			pending = pending[i+1:]
			line++
			if len(raw) == 0 {
				continue
			}
			rec, perr := ParseRecord(raw)
			if perr != nil {
				return fmt.Errorf("%s: line %d: %w", path, line, perr)
			}
			switch rec.Kind {
			case RunStarted:
				open[rec.Run], ended = true, false
			case RunEnded:
				delete(open, rec.Run)
				ended = len(open) == 0
			}
			fn(rec)
		}
		if len(pending) > MaxLine {
			return fmt.Errorf("%s: line %d: longer than %d bytes", path, line+1, MaxLine)
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read %s: %w", path, err)
		}
		if n > 0 {
			continue
		}
		if ended && len(pending) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ticker.C:
		}
	}
}
