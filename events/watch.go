package events

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// watcher signals on C each time a process writes to a file. Signals that
// come while one is pending merge into it: the reader reads everything new
// anyway.
type watcher struct {
	C    chan struct{}
	file *os.File
}

// watch watches path for writes. bbolt writes every commit's pages and
// meta page in place, so each commit of any process modifies the file.
func watch(path string) (*watcher, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("watch %s: inotify: %w", path, err)
	}
	if _, err := unix.InotifyAddWatch(fd, path, unix.IN_MODIFY|unix.IN_CLOSE_WRITE); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("watch %s: %w", path, err)
	}
	// Through the runtime's poller, so that Close ends a blocked Read.
	w := &watcher{C: make(chan struct{}, 1), file: os.NewFile(uintptr(fd), "inotify")}
	go w.loop()
	return w, nil
}

func (w *watcher) loop() {
	defer close(w.C)
	buf := make([]byte, 4096)
	for {
		if _, err := w.file.Read(buf); err != nil {
			return // closed
		}
		select {
		case w.C <- struct{}{}:
		default:
		}
	}
}

// Close stops the watch.
func (w *watcher) Close() { w.file.Close() }
