package snapshot

import (
	"errors"
	"testing"
	"time"

	"github.com/silo-dev/silo/errkind"
)

func at(s string) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04:05", s, time.Local)
	if err != nil {
		panic(err)
	}
	return t
}

func TestParseSchedule(t *testing.T) {
	for _, tc := range []struct {
		spec string
		ok   bool
	}{
		{"", true}, {"0 6 * * *", true}, {"@hourly", true}, {"@daily", true}, {"@weekly", true},
		{"@monthly", true}, {"@yearly", true}, {"@annually", true}, {"@midnight", true},
		{"*/15 * * * 1-5", true}, {"0 6 * * *, 30 18 * * *", true},
		{"@every 1h", false}, {"CRON_TZ=UTC 0 6 * * *", false}, {"0 6 * *", false},
		{"0 0 6 * * *", false}, {"61 * * * *", false}, {"@sometimes", false}, {"0 6 * * *,", false},
	} {
		_, err := ParseSchedule(tc.spec)
		if (err == nil) != tc.ok {
			t.Errorf("ParseSchedule(%q): %v, want ok=%v", tc.spec, err, tc.ok)
		}
		if err != nil && !errors.Is(err, errkind.Invalid) {
			t.Errorf("ParseSchedule(%q): %v is not Invalid", tc.spec, err)
		}
	}
}

func TestScheduleDue(t *testing.T) {
	for _, tc := range []struct {
		spec       string
		since, now string // since "" is no earlier scheduled snapshot
		due        bool
	}{
		// The first pass takes the snapshot only in the minute named.
		{"0 6 * * *", "", "2026-03-01 05:59:59", false},
		{"0 6 * * *", "", "2026-03-01 06:00:00", true},
		{"0 6 * * *", "", "2026-03-01 06:00:59", true},
		{"0 6 * * *", "", "2026-03-01 06:01:00", false},
		// Then every time named since the last one counts, once.
		{"0 6 * * *", "2026-03-01 06:00:10", "2026-03-01 06:00:40", false},
		{"0 6 * * *", "2026-03-01 06:00:10", "2026-03-02 05:59:00", false},
		{"0 6 * * *", "2026-03-01 06:00:10", "2026-03-02 06:00:00", true},
		{"0 6 * * *", "2026-03-01 06:00:10", "2026-03-05 11:00:00", true}, // a pass missed: caught up
		{"@hourly", "2026-03-01 06:00:00", "2026-03-01 06:59:59", false},
		{"@hourly", "2026-03-01 06:00:00", "2026-03-01 07:00:00", true},
		{"0 6 * * *, 30 18 * * *", "2026-03-01 06:00:00", "2026-03-01 18:30:00", true},
		{"0 6 * * *, 30 18 * * *", "2026-03-01 06:00:00", "2026-03-01 18:29:00", false},
		{"@weekly", "", "2026-03-01 00:00:30", true}, // a Sunday
		{"@weekly", "", "2026-03-02 00:00:30", false},
		{"0 0 30 2 *", "", "2026-03-01 00:00:00", false}, // never comes
	} {
		s, err := ParseSchedule(tc.spec)
		if err != nil {
			t.Fatal(err)
		}
		var since time.Time
		if tc.since != "" {
			since = at(tc.since)
		}
		if got := s.Due(since, at(tc.now)); got != tc.due {
			t.Errorf("%q since %q at %s: due %v, want %v", tc.spec, tc.since, tc.now, got, tc.due)
		}
	}
}

func TestExpiry(t *testing.T) {
	t0 := at("2026-01-31 12:00:00")
	for _, tc := range []struct {
		in, want string // want "" with ok: never; "!" refused
	}{
		{"", ""}, {"   ", ""},
		{"30M", "2026-01-31 12:30:00"}, {"2H", "2026-01-31 14:00:00"}, {"1d", "2026-02-01 12:00:00"},
		{"2w", "2026-02-14 12:00:00"}, {"1m", "2026-03-03 12:00:00"}, {"1y", "2027-01-31 12:00:00"},
		{"1d 3H", "2026-02-01 15:00:00"}, {"1H 1M", "2026-01-31 13:01:00"},
		{"2", "!"}, {"2 d", "!"}, {"2D", "!"}, {"-1d", "!"}, {"1.5d", "!"}, {"0d", "!"}, {"two weeks", "!"},
		{"999999999999999999999d", "!"},
	} {
		got, err := Expiry(tc.in, t0)
		switch {
		case tc.want == "!":
			if !errors.Is(err, errkind.Invalid) {
				t.Errorf("Expiry(%q) = %v, %v; want Invalid", tc.in, got, err)
			}
		case err != nil:
			t.Errorf("Expiry(%q): %v", tc.in, err)
		case tc.want == "" && !got.IsZero(), tc.want != "" && !got.Equal(at(tc.want)):
			t.Errorf("Expiry(%q) = %v, want %q", tc.in, got, tc.want)
		}
	}
}

func TestExpired(t *testing.T) {
	now := at("2026-03-01 06:00:00")
	snaps := []Dated{
		{Name: "never"},
		{Name: "past", Expires: now.Add(-time.Hour)},
		{Name: "now", Expires: now},
		{Name: "later", Expires: now.Add(time.Second)},
	}
	got := Expired(snaps, now)
	if len(got) != 2 || got[0] != "past" || got[1] != "now" {
		t.Fatalf("Expired = %v, want [past now]", got)
	}
}

func TestName(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 6, 0, 5, 0, time.UTC)
	for _, tc := range []struct {
		pattern string
		taken   []string
		want    string // "!" refused
	}{
		{"snap%d", nil, "snap0"},
		{"snap%d", []string{"snap0", "snap4", "other7", "snap02", "snapx"}, "snap5"},
		{"auto-%d", []string{"snap0", "snap1"}, "auto-0"},
		{"%d-daily", []string{"3-daily"}, "4-daily"},
		{"{{ creation_date|date:'2006-01-02_15-04-05' }}", nil, "2026-03-01_06-00-05"},
		{`daily-{{creation_date|date:"20060102"}}`, nil, "daily-20260301"},
		{"daily-{{ creation_date|date:'20060102' }}", []string{"daily-20260301"}, "daily-20260301-0"},
		{"daily-{{ creation_date|date:'20060102' }}", []string{"daily-20260301", "daily-20260301-0"}, "daily-20260301-1"},
		{"d{{ creation_date|date:'0102' }}-%d", []string{"d0301-2"}, "d0301-3"},
		{"fixed", nil, "fixed"},
		{"snap%d%d", nil, "!"}, {"snap%s", nil, "!"}, {"100%", nil, "!"},
		{"{{ name }}", nil, "!"}, {"{% if x %}", nil, "!"},
	} {
		got, err := Name(tc.pattern, t0, tc.taken)
		if tc.want == "!" {
			if !errors.Is(err, errkind.Invalid) {
				t.Errorf("Name(%q) = %q, %v; want Invalid", tc.pattern, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Name(%q, %v) = %q, %v; want %q", tc.pattern, tc.taken, got, err, tc.want)
		}
	}
}
