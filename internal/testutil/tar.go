package testutil

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

const block = 512

// FixTarChecksums returns a copy of data in which every tar header it can
// follow carries a right checksum. A fuzzer that changes a header byte
// breaks its checksum, and the tar reader then stops at the first header:
// with the checksums fixed, the change reaches the code under test.
// It follows the chain of headers from the start, and stops at the first
// block that is no USTAR, PAX or GNU header.
func FixTarChecksums(data []byte) []byte {
	out := bytes.Clone(data)
	for off := 0; off+block <= len(out); {
		h := out[off : off+block]
		if string(h[257:262]) != "ustar" {
			break
		}
		copy(h[148:156], "        ")
		sum := 0
		for _, c := range h {
			sum += int(c)
		}
		copy(h[148:156], fmt.Sprintf("%06o\x00 ", sum))
		size, ok := tarSize(h[124:136])
		if !ok || size > int64(len(out)) {
			break
		}
		switch h[156] {
		case '1', '2', '3', '4', '5', '6': // links, devices, directories, FIFOs: no data
			size = 0
		}
		off += block + int((size+block-1)/block*block)
	}
	return out
}

// tarSize reads a header's size field, in octal or base-256.
func tarSize(f []byte) (int64, bool) {
	if f[0]&0x80 != 0 {
		return 0, false // base-256: a size this test data cannot hold
	}
	s := strings.Trim(string(f), " \x00")
	if s == "" {
		return 0, true
	}
	n, err := strconv.ParseInt(s, 8, 64)
	return n, err == nil && n >= 0
}
