package clock

import (
	"context"
	"time"
)

// WithCancel is context.WithCancel for contexts that goroutines of c wait on. On a World's clock the returned
// cancel wakes, within the caller's turn, every actor waiting with the context or one derived from it by
// WithCancel, WithCancelCause or WithTimeout (or by context.WithValue), and the world need not look at the
// context otherwise; on any other clock it is context's own. Such a context that ends through a parent of the
// standard library is found by a sweep the world makes every few times it advances time: later, but as
// deterministically.
func WithCancel(c Clock, parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := WithCancelCause(c, parent)
	return ctx, func() { cancel(context.Canceled) }
}

// WithCancelCause is context.WithCancelCause for contexts that goroutines of c wait on (see WithCancel).
func WithCancelCause(c Clock, parent context.Context) (context.Context, context.CancelCauseFunc) {
	ctx, cancel := context.WithCancelCause(parent)
	w := WorldOf(c)
	if w == nil {
		return ctx, cancel
	}
	n := w.newCtxNode(parent, ctx.Done())
	return context.WithValue(ctx, ctxNodeKey{}, n), func(cause error) {
		cancel(cause)
		w.canceled(n)
	}
}

// WithTimeout is a WithCancel context that is also canceled, with context.DeadlineExceeded as its cause, once d
// of c's time has passed.
func WithTimeout(c Clock, parent context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := WithCancelCause(c, parent)
	stop := AfterFunc(c, d, func() { cancel(context.DeadlineExceeded) })
	return ctx, func() {
		stop()
		cancel(context.Canceled)
	}
}

type ctxNodeKey struct{}

// ctxNode is a context of the world's: who waits on it, and the contexts of the world's derived from it.
type ctxNode struct {
	done     <-chan struct{}
	parent   *ctxNode
	children map[*ctxNode]struct{}
	waiting  waiters
	ended    bool
}

func (w *World) newCtxNode(parent context.Context, done <-chan struct{}) *ctxNode {
	n := &ctxNode{done: done}
	w.mu.Lock()
	defer w.mu.Unlock()
	if p, _ := parent.Value(ctxNodeKey{}).(*ctxNode); p != nil && !p.ended {
		n.parent = p
		if p.children == nil {
			p.children = map[*ctxNode]struct{}{}
		}
		p.children[n] = struct{}{}
	}
	return n
}

// canceled wakes the waiters of n and of every context derived from it, and detaches them.
func (w *World) canceled(n *ctxNode) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if n.parent != nil {
		delete(n.parent.children, n)
		n.parent = nil
	}
	w.endLocked(n)
	w.kickLocked()
}

func (w *World) endLocked(n *ctxNode) {
	if n.ended {
		return
	}
	n.ended = true
	n.waiting.wake(w)
	for c := range n.children {
		c.parent = nil
		w.endLocked(c)
	}
	n.children = nil
}

// nodeOf returns the world's context node whose cancellation is exactly ctx's, if there is one.
func nodeOf(ctx context.Context, done <-chan struct{}) *ctxNode {
	if n, _ := ctx.Value(ctxNodeKey{}).(*ctxNode); n != nil && n.done == done {
		return n
	}
	return nil
}
