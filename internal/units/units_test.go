package units

import "testing"

func TestFormatSizeReadsBack(t *testing.T) {
	for n, want := range map[int64]string{1 << 30: "1GiB", 20 << 30: "20GiB", 1536 << 20: "1536MiB", 3 << 40: "3TiB",
		4096: "4KiB", 1000: "1000", 1: "1"} {
		got := FormatSize(n)
		if got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", n, got, want)
		}
		if back, err := ParseSize(got); err != nil || back != n {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", got, back, err, n)
		}
	}
}
