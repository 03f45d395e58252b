package engine

import (
	"container/heap"
	"time"
)

// deadline is a time at which an execution times out unless it ended or its deadline moved meanwhile; entries
// are not removed when that happens but skipped when they come due.
type deadline struct {
	at time.Time
	x  *Execution
}

// deadlines is a min-heap of deadlines.
type deadlines struct{ h deadlineHeap }

func (d *deadlines) push(dl deadline) { heap.Push(&d.h, dl) }

func (d *deadlines) pop() deadline { return heap.Pop(&d.h).(deadline) }

func (d *deadlines) peek() (deadline, bool) {
	if len(d.h) == 0 {
		return deadline{}, false
	}
	return d.h[0], true
}

type deadlineHeap []deadline

func (h deadlineHeap) Len() int           { return len(h) }
func (h deadlineHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h deadlineHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *deadlineHeap) Push(x any)        { *h = append(*h, x.(deadline)) }
func (h *deadlineHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
