package metrics

import (
	"net/http"

	"github.com/prometheus/common/expfmt"

	"strings"
	"testing"
)

// A label value is escaped as the text format wants; a metric that no
// instance has is left out; the others come once, with help and type,
// and a sample per instance and device.
func TestWrite(t *testing.T) {
	insts := []Instance{
		{Name: `we"b\1`, Project: "default", Type: "container", Processes: 3,
			NICs: []NIC{{Device: "eth0", RxBytes: 10}, {Device: "eth1", RxBytes: 20}}},
		{Name: "db", Project: "default", Type: "container", Processes: 1, Memory: map[string]uint64{"RSS": 4096}},
	}
	var b strings.Builder
	if err := Write(&b, insts); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"# HELP silo_procs_total Number of running processes\n# TYPE silo_procs_total gauge\n" +
			`silo_procs_total{name="we\"b\\1",project="default",type="container"} 3` + "\n" +
			`silo_procs_total{name="db",project="default",type="container"} 1` + "\n",
		`silo_network_receive_bytes_total{device="eth1",name="we\"b\\1",project="default",type="container"} 20` + "\n",
		"# TYPE silo_memory_RSS_bytes gauge\n" + `silo_memory_RSS_bytes{name="db",project="default",type="container"} 4096` + "\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no\n%s\nin\n%s", want, out)
		}
	}
	for _, absent := range []string{"silo_disk_read_bytes_total", "silo_memory_Swap_bytes", "silo_cpu_seconds_total"} {
		if strings.Contains(out, absent) {
			t.Errorf("%s written with no sample", absent)
		}
	}
	if n := strings.Count(out, "# TYPE silo_procs_total "); n != 1 {
		t.Errorf("silo_procs_total typed %d times", n)
	}
	b.Reset()
	if err := Write(&b, nil); err != nil || b.Len() != 0 {
		t.Errorf("no instances: %q, %v", b.String(), err)
	}
}

// A scraper that reads ContentType parses the text format.
func TestContentType(t *testing.T) {
	if f := expfmt.ResponseFormat(http.Header{"Content-Type": {ContentType}}); f.FormatType() != expfmt.TypeTextPlain {
		t.Errorf("%s reads as %s", ContentType, f)
	}
}
