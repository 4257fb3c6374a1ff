package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/silo-dev/silo/archive"
	"github.com/silo-dev/silo/compression"
	"github.com/silo-dev/silo/errkind"
)

// File is an image file as accepted into the image store.
type File struct {
	Fingerprint string // SHA-256 of the file as given
	Size        int64
	Compression string
}

// Save copies the image r into the new file path while it fingerprints it
// and checks, in the same pass, that it holds a sound root filesystem
// tarball. On any failure path is removed and the error says what is wrong
// with the image (errkind.Invalid) or with the copy.
func Save(ctx context.Context, r io.Reader, path string) (*File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(path)
		}
	}()
	pr, pw := io.Pipe()
	type result struct {
		compression string
		err         error
	}
	checked := make(chan result, 1)
	go func() {
		c, err := check(ctx, pr)
		// Unblock the copy below whether the check failed or ended early.
		pr.CloseWithError(errors.Join(err, errStop))
		checked <- result{c, err}
	}()
	h := sha256.New()
	n, copyErr := io.Copy(io.MultiWriter(f, h, pw), r)
	pw.Close()
	res := <-checked
	if res.err != nil {
		return nil, res.err
	}
	if copyErr != nil && !errors.Is(copyErr, errStop) {
		return nil, fmt.Errorf("read image: %w", copyErr)
	}
	if err := f.Sync(); err != nil {
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	ok = true
	return &File{Fingerprint: hex.EncodeToString(h.Sum(nil)), Size: n, Compression: res.compression}, nil
}

// errStop ends the copy once the check has read all it needs.
var errStop = errors.New("check finished")

func check(ctx context.Context, r io.Reader) (string, error) {
	tr, kind, err := compression.Decompress(r)
	if err != nil {
		return kind, errkind.Wrap(errkind.Invalid, "image is not a valid %s stream: %v", kind, err)
	}
	defer tr.Close()
	if err := archive.Verify(ctx, tr); err != nil {
		return kind, fmt.Errorf("image is not a sound root filesystem tarball (%s): %w", kind, err)
	}
	// Read to the end, so that a corrupt compressed trailer is caught.
	if _, err := io.Copy(io.Discard, tr); err != nil {
		return kind, errkind.Wrap(errkind.Invalid, "image is not a valid %s stream: %v", kind, err)
	}
	_, err = io.Copy(io.Discard, r)
	return kind, err
}

// Unpack extracts the image file at path into root.
func Unpack(ctx context.Context, path, root string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	tr, _, err := compression.Decompress(f)
	if err != nil {
		return err
	}
	defer tr.Close()
	return archive.Extract(ctx, tr, root, archive.ExtractOptions{})
}
