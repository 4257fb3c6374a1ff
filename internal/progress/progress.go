// Package progress draws a one-line progress bar for long streams: bytes
// so far, rate, and when the total is known, a bar and the time left.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/term"
)

// Bar is a progress line on a terminal.
type Bar struct {
	w     io.Writer
	label string
	start time.Time
	total atomic.Int64
	done  atomic.Int64
	stop  chan struct{}
	wg    sync.WaitGroup
}

// interval is how often the line is redrawn.
const interval = 250 * time.Millisecond

// Start draws a bar labelled label on w, or returns nil when w is not a
// terminal: nothing is drawn on a pipe or into a file.
func Start(w *os.File, label string) *Bar {
	if !term.IsTerminal(int(w.Fd())) {
		return nil
	}
	b := &Bar{w: w, label: label, start: time.Now(), stop: make(chan struct{})}
	b.wg.Add(1)
	go b.loop()
	return b
}

// Expect sets the number of bytes the stream should come to.
func (b *Bar) Expect(total int64) { b.total.Store(total) }

// Add counts n more bytes.
func (b *Bar) Add(n int) { b.done.Add(int64(n)) }

// Reader counts the bytes read through r.
func (b *Bar) Reader(r io.Reader) io.Reader { return &reader{r: r, b: b} }

type reader struct {
	r io.Reader
	b *Bar
}

func (r *reader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.b.Add(n)
	return n, err
}

// Finish stops drawing and clears the line.
func (b *Bar) Finish() {
	close(b.stop)
	b.wg.Wait()
	fmt.Fprint(b.w, "\r\033[K")
}

func (b *Bar) loop() {
	defer b.wg.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
			fmt.Fprint(b.w, "\r\033[K"+Line(b.label, b.done.Load(), b.total.Load(), time.Since(b.start)))
		}
	}
}

// Line renders the progress of done bytes out of total (0: unknown)
// after elapsed time.
func Line(label string, done, total int64, elapsed time.Duration) string {
	rate := float64(done) / max(elapsed.Seconds(), 0.001)
	s := fmt.Sprintf("%s %s %s/s", label, size(done), size(int64(rate)))
	if total <= 0 || done > total {
		return s
	}
	const width = 20
	fill := int(width * done / total)
	s += fmt.Sprintf(" [%s%s] %3d%%", strings.Repeat("=", fill), strings.Repeat(" ", width-fill), 100*done/total)
	if rate > 0 {
		left := time.Duration(float64(total-done) / rate * float64(time.Second))
		s += " ETA " + left.Round(time.Second).String()
	}
	return s
}

func size(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, u := float64(n), 0
	for v >= unit && u < 4 {
		v /= unit
		u++
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGT"[u-1])
}
