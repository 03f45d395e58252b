package reports

import (
	"bufio"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
)

// The web view: one HTML page whose CSS and JavaScript are inlined, served live by the hub and written with
// the run's records embedded as the self-contained HTML report. No build step, no external fetch (the page's
// Content-Security-Policy forbids any).
var (
	//go:embed web/page.html
	pageHTML string
	//go:embed web/style.css
	pageCSS string
	//go:embed web/app.js
	pageJS string
)

// Page modes.
const (
	modeLive   = "live"
	modeReport = "report"
)

// pageParts returns the page up to the embedded records and after them, for mode.
func pageParts(mode string) (head, tail string) {
	const marker = "/*RECORDS*/"
	page := strings.Replace(pageHTML, "/*STYLE*/", pageCSS, 1)
	page = strings.Replace(page, "/*MODE*/", mode, 1)
	head, tail, _ = strings.Cut(page, marker)
	// The script is inserted last so that nothing in it is taken for a marker.
	return head, strings.Replace(tail, "/*SCRIPT*/", pageJS, 1)
}

// livePage is the live view's page, built once.
var livePage = sync.OnceValue(func() []byte {
	head, tail := pageParts(modeLive)
	return []byte(head + tail)
})

// HTML is the sink that writes the self-contained HTML report (report.html): the live page's views over the
// run's records, embedded in the file. It streams the records into a temporary file as they come, so it holds
// none of them in memory, and renames the file into place at Stop.
type HTML struct {
	path string
	w    io.Writer

	mu    sync.Mutex
	tmp   *atomicFile
	buf   *bufio.Writer
	tail  string
	first bool
	err   error
}

var _ Sink = (*HTML)(nil)

// CreateHTML returns a sink that writes the HTML report to path.
func CreateHTML(path string) *HTML { return &HTML{path: path} }

// NewHTML returns a sink that writes the HTML report to w (at Stop it is complete; w is not closed).
func NewHTML(w io.Writer) *HTML { return &HTML{w: w} }

// Start implements Sink.
func (h *HTML) Start(RunInfo) error {
	w := h.w
	if h.path != "" {
		f, err := createAtomic(h.path)
		if err != nil {
			return err
		}
		h.tmp, w = f, f
	}
	head, tail := pageParts(modeReport)
	h.buf, h.tail, h.first = bufio.NewWriterSize(w, 64<<10), tail, true
	if _, err := io.WriteString(h.buf, head+"["); err != nil {
		h.err = fmt.Errorf("write report: %w", err)
	}
	return h.err
}

// Add implements Sink.
func (h *HTML) Add(records []Record) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err != nil {
		return
	}
	for _, r := range records {
		b, err := json.Marshal(r) // escapes <, > and &: nothing in a record can close the script element
		if err != nil {
			h.err = fmt.Errorf("encode record %d: %w", r.Seq, err)
			return
		}
		if !h.first {
			h.buf.WriteString(",\n")
		}
		h.first = false
		if _, err := h.buf.Write(b); err != nil {
			h.err = fmt.Errorf("write report: %w", err)
			return
		}
	}
}

// Stop implements Sink: it completes the page and puts the file in place.
func (h *HTML) Stop() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err == nil {
		if _, err := io.WriteString(h.buf, "]"+h.tail); err != nil {
			h.err = fmt.Errorf("write report: %w", err)
		} else if err := h.buf.Flush(); err != nil {
			h.err = fmt.Errorf("write report: %w", err)
		}
	}
	if h.tmp != nil {
		if h.err != nil {
			h.tmp.abort()
		} else {
			h.err = h.tmp.commit()
		}
	}
	return h.err
}

// WriteHTML writes the HTML report of records to w; records are JSON as encoding/json writes it, which
// escapes <, > and & so that nothing in a record can close the script element it is embedded in (the hub's
// backlog).
func WriteHTML(w io.Writer, records [][]byte) error {
	head, tail := pageParts(modeReport)
	bw := bufio.NewWriter(w)
	bw.WriteString(head + "[")
	for i, r := range records {
		if i > 0 {
			bw.WriteString(",\n")
		}
		bw.Write(r)
	}
	bw.WriteString("]" + tail)
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}
