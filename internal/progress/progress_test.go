package progress

import (
	"testing"
	"time"
)

func TestLine(t *testing.T) {
	cases := []struct {
		done, total int64
		want        string
	}{
		{512, 0, "export 512 B 256 B/s"},
		{50 << 20, 100 << 20, "export 50.0 MiB 25.0 MiB/s [==========          ]  50% ETA 2s"},
		// An estimate that came out low: no bar rather than a wrong one.
		{200 << 20, 100 << 20, "export 200.0 MiB 100.0 MiB/s"},
	}
	for _, c := range cases {
		if got := Line("export", c.done, c.total, 2*time.Second); got != c.want {
			t.Errorf("Line(%d, %d) = %q, want %q", c.done, c.total, got, c.want)
		}
	}
}
