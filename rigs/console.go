package rigs

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
)

// Console is a board's console output as it arrives: lines kept for expect-style waits, each complete line
// handed on (to the event stream and the board's log). Frames never reach it: only the text between them.
type Console struct {
	onLine func(line string)

	mu      sync.Mutex
	pos     int64 // bytes of console text so far
	lines   []consoleLine
	partial strings.Builder
	waiters map[*waiter]struct{}
}

type consoleLine struct {
	end  int64 // position after the line
	text string
}

type waiter struct {
	re   *regexp.Regexp
	from int64
	ch   chan string
}

// maxLines is how many lines a console keeps for waits that start late.
const maxLines = 2000

func newConsole(onLine func(string)) *Console {
	return &Console{onLine: onLine, waiters: map[*waiter]struct{}{}}
}

// Mark returns the console's position now: a wait from it sees only what arrives after.
func (c *Console) Mark() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pos
}

// Write takes console text.
func (c *Console) Write(p []byte) (int, error) {
	c.mu.Lock()
	var done []string
	for _, b := range p {
		c.pos++
		if b == '\n' {
			text := strings.TrimRight(c.partial.String(), "\r")
			c.partial.Reset()
			c.lines = append(c.lines, consoleLine{end: c.pos, text: text})
			if len(c.lines) > maxLines {
				c.lines = c.lines[len(c.lines)-maxLines:]
			}
			done = append(done, text)
			c.match(text)
			continue
		}
		if c.partial.Len() < 64<<10 {
			c.partial.WriteByte(b)
		}
	}
	if c.partial.Len() > 0 {
		c.match(strings.TrimRight(c.partial.String(), "\r"))
	}
	c.mu.Unlock()
	if c.onLine != nil {
		for _, l := range done {
			c.onLine(l)
		}
	}
	return len(p), nil
}

// matches reports whether re matches text or a prefix of it: a prompt is matched at the end of what had
// arrived, even when the line went on (the agent's log after "login: ") before anyone looked.
func matches(re *regexp.Regexp, text string) bool {
	if re.MatchString(text) {
		return true
	}
	for i := len(text) - 1; i > 0; i-- {
		if re.MatchString(text[:i]) {
			return true
		}
	}
	return false
}

// match wakes the waiters whose pattern text matches. The caller holds mu.
func (c *Console) match(text string) {
	for w := range c.waiters {
		if matches(w.re, text) {
			w.ch <- text
			delete(c.waiters, w)
		}
	}
}

// Expect waits until a console line — or the line being written, for a prompt — arriving after from matches
// re, and returns it; it fails when ctx ends first, with the last lines seen.
func (c *Console) Expect(ctx context.Context, re *regexp.Regexp, from int64) (string, error) {
	w := &waiter{re: re, from: from, ch: make(chan string, 1)}
	c.mu.Lock()
	for _, l := range c.lines {
		if l.end > from && matches(re, l.text) {
			c.mu.Unlock()
			return l.text, nil
		}
	}
	if p := strings.TrimRight(c.partial.String(), "\r"); c.pos > from && p != "" && matches(re, p) {
		c.mu.Unlock()
		return p, nil
	}
	c.waiters[w] = struct{}{}
	c.mu.Unlock()
	select {
	case s := <-w.ch:
		return s, nil
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.waiters, w)
		c.mu.Unlock()
		select {
		case s := <-w.ch:
			return s, nil
		default:
		}
		return "", fmt.Errorf("console never showed %q (%v); last lines:\n%s", re, ctx.Err(), c.Tail(8))
	}
}

// Tail returns the last n lines, and the line being written, indented for a message.
func (c *Console) Tail(n int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, l := range c.lines[max(0, len(c.lines)-n):] {
		out = append(out, "    | "+l.text)
	}
	if c.partial.Len() > 0 {
		out = append(out, "    | "+c.partial.String())
	}
	if len(out) == 0 {
		return "    (nothing on the console)"
	}
	return strings.Join(out, "\n")
}
