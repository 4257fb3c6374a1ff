package zfs

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"

	"github.com/silo-dev/silo/internal/fsutil"
	"github.com/silo-dev/silo/internal/runcmd"
)

// zfs-fuse serves each command's connection in a thread of its own, and
// two of its races wedge the daemon for good. Two mounts at once (a
// clone, a create, a receive, a mount) interleave their records in the
// pipe its FUSE listener reads, after which no mount, new or old, is
// served: every access to it hangs. And two connections accepted in one
// round of its listener can swap their first requests, leaving one
// command without an answer. 25 `zfs clone`s at once reproduce the first
// within a few rounds. So on zfs-fuse, every silo process runs its zfs and
// zpool commands one at a time, under one lock for the host. OpenZFS,
// whose commands are ioctls on /dev/zfs, runs them freely.
var onFuse = sync.OnceValue(func() bool {
	_, err := os.Stat("/dev/zfs")
	return err != nil
})

// lockPath is the host's lock: every state directory shares the daemon.
const lockPath = "/run/lock/silo-zfs-fuse.lock"

// hold takes the host's lock on zfs-fuse, and does nothing on OpenZFS.
// release may be called more than once, from any goroutine.
func hold() (release func(), err error) {
	if !onFuse() {
		return func() {}, nil
	}
	f, err := fsutil.LockFile(lockPath, syscall.LOCK_EX)
	if err != nil {
		return nil, fmt.Errorf("zfs-fuse lock: %w", err)
	}
	return sync.OnceFunc(func() { f.Close() }), nil
}

// serially runs fn, which runs one zfs or zpool command, under the lock.
func serially(fn func() error) error {
	release, err := hold()
	if err != nil {
		return err
	}
	defer release()
	return fn()
}

func run(ctx context.Context, c runcmd.Cmd) (out string, err error) {
	err = serially(func() error {
		out, err = c.Run(ctx)
		return err
	})
	return out, err
}

func zfs(ctx context.Context, args ...string) (string, error) {
	return run(ctx, runcmd.Cmd{Name: "zfs", Args: args})
}

func zpool(ctx context.Context, args ...string) (string, error) {
	return run(ctx, runcmd.Cmd{Name: "zpool", Args: args})
}

// releaseOnWrite gives up the lock at a send's first byte: by then the
// command's requests have been answered, and a receiving end that waits for
// those bytes before it takes the lock (see receive) can go on.
type releaseOnWrite struct {
	w       io.Writer
	release func()
}

func (r releaseOnWrite) Write(p []byte) (int, error) {
	r.release()
	return r.w.Write(p)
}

// receive runs `zfs receive args...` on the stream r. It takes the lock
// once the stream's first bytes are there, so that a send feeding it from
// this process or another has started and let the lock go; and it lets
// the lock go when the command exits, not when r ends, since what writes r
// may need the lock to finish (a send removes the snapshot it took).
func receive(ctx context.Context, args []string, r io.Reader) error {
	br := bufio.NewReader(r)
	_, _ = br.Peek(1) // an empty or failing stream is zfs receive's to refuse
	pr, pw, err := os.Pipe()
	if err != nil {
		return err
	}
	copied := make(chan error, 1)
	go func() {
		_, err := io.Copy(pw, br)
		pw.Close()
		copied <- err
	}()
	_, err = run(ctx, runcmd.Cmd{Name: "zfs", Args: args, Stdin: pr})
	// Unblock the copy if the command left part of the stream unread.
	pr.Close()
	cerr := <-copied
	if err != nil {
		return err
	}
	if cerr != nil && !errors.Is(cerr, syscall.EPIPE) {
		return fmt.Errorf("read the stream: %w", cerr)
	}
	return nil
}
