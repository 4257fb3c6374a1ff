// Package revert keeps the undo steps of a multi-step operation so that a
// failure half-way leaves nothing behind.
package revert

// List holds undo steps; they run last-added first unless Success is called.
//
//	r := revert.New()
//	defer r.Fail()
//	... r.Add(undo) after each step ...
//	r.Success()
type List struct {
	steps []func()
	done  bool
}

// New returns an empty list.
func New() *List { return &List{} }

// Add records how to undo the step that just succeeded.
func (l *List) Add(undo func()) { l.steps = append(l.steps, undo) }

// Fail runs the undo steps in reverse order, unless Success was called.
func (l *List) Fail() {
	if l.done {
		return
	}
	l.done = true
	for i := len(l.steps) - 1; i >= 0; i-- {
		l.steps[i]()
	}
}

// Success forgets the undo steps: the operation is complete.
func (l *List) Success() { l.done = true }
