package snapshot

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/silo-dev/silo/errkind"
)

// Schedule is when snapshots are taken (LXD's snapshots.schedule): one
// or several cron specs of five fields, or the descriptors @hourly,
// @daily (@midnight), @weekly, @monthly, @yearly and @annually,
// separated by commas. Times are in the host's local zone, as cron's.
type Schedule []cron.Schedule

var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseSchedule reads a snapshots.schedule value; "" is no schedule.
func ParseSchedule(s string) (Schedule, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out Schedule
	for spec := range strings.SplitSeq(s, ",") {
		spec = strings.TrimSpace(spec)
		// cron's parser knows more than LXD takes: intervals and zones.
		if strings.HasPrefix(spec, "@every") || strings.Contains(spec, "TZ=") {
			return nil, errkind.Wrap(errkind.Invalid, "snapshot schedule %q: %q is not a cron spec of five fields or @hourly, @daily, @weekly, @monthly, @yearly", s, spec)
		}
		sched, err := cronParser.Parse(spec)
		if err != nil {
			return nil, errkind.Wrap(errkind.Invalid, "snapshot schedule %q: %q: %v", s, spec, err)
		}
		out = append(out, sched)
	}
	return out, nil
}

// Next is the first time after t that the schedule names; the zero time
// when it names none (an empty schedule, or a date that never comes).
func (s Schedule) Next(t time.Time) time.Time {
	var next time.Time
	for _, c := range s {
		if n := c.Next(t); !n.IsZero() && (next.IsZero() || n.Before(next)) {
			next = n
		}
	}
	return next
}

// Due reports whether the schedule names a time in (since, now]: a
// snapshot is due. A zero since (no scheduled snapshot yet) looks back to
// the start of now's minute only, so that a schedule set today does not
// take one for a time that went by before it was set.
func (s Schedule) Due(since, now time.Time) bool {
	if since.IsZero() {
		since = now.Truncate(time.Minute).Add(-time.Nanosecond)
	}
	next := s.Next(since)
	return !next.IsZero() && !next.After(now)
}

var expiryPart = regexp.MustCompile(`^(\d+)([MHdwmy])$`)

// Expiry returns when a snapshot taken at t expires under LXD's
// snapshots.expiry syntax: space-separated amounts with a unit, M
// minutes, H hours, d days, w weeks, m months, y years ("2w", "1d 3H").
// "" is never: the zero time.
func Expiry(s string, t time.Time) (time.Time, error) {
	parts := strings.Fields(s)
	if len(parts) == 0 {
		return time.Time{}, nil
	}
	at := t
	for _, p := range parts {
		m := expiryPart.FindStringSubmatch(p)
		n, err := 0, error(nil)
		if m != nil {
			n, err = strconv.Atoi(m[1])
		}
		if m == nil || err != nil || n > 100000 {
			return time.Time{}, errkind.Wrap(errkind.Invalid, "snapshot expiry %q: %q is not a count with a unit M (minutes), H (hours), d, w, m (months) or y, such as 2w or 1d 3H", s, p)
		}
		switch m[2] {
		case "M":
			at = at.Add(time.Duration(n) * time.Minute)
		case "H":
			at = at.Add(time.Duration(n) * time.Hour)
		case "d":
			at = at.AddDate(0, 0, n)
		case "w":
			at = at.AddDate(0, 0, 7*n)
		case "m":
			at = at.AddDate(0, n, 0)
		case "y":
			at = at.AddDate(n, 0, 0)
		}
	}
	if !at.After(t) {
		return time.Time{}, errkind.Wrap(errkind.Invalid, "snapshot expiry %q: give a time to keep the snapshot, such as 2w", s)
	}
	return at, nil
}

// Expired lists the names of snaps whose expiry is at or before now.
func Expired(snaps []Dated, now time.Time) []string {
	var out []string
	for _, s := range snaps {
		if !s.Expires.IsZero() && !s.Expires.After(now) {
			out = append(out, s.Name)
		}
	}
	return out
}

// Dated is a snapshot's name and expiry: the zero time for never.
type Dated struct {
	Name    string
	Expires time.Time
}

// DefaultPattern is LXD's snapshots.pattern when none is set.
const DefaultPattern = "snap%d"

// creationDate is the one template of LXD's pongo2 patterns that silo
// renders: {{ creation_date|date:'LAYOUT' }}, LAYOUT in Go's time layout.
var creationDate = regexp.MustCompile(`\{\{\s*creation_date\s*\|\s*date\s*:\s*(?:'([^']*)'|"([^"]*)")\s*\}\}`)

// Name renders pattern (LXD's snapshots.pattern) for a snapshot taken
// at t, among the names the owner's snapshots already have. It renders
// {{ creation_date|date:'LAYOUT' }} as t in Go's layout LAYOUT, and %d,
// at most once, as one more than the highest number that fills it in a
// taken name (0 for none). A name without %d that is taken gets -0, -1...
// appended, as LXD does. Any other {{ }} or % is refused.
func Name(pattern string, t time.Time, taken []string) (string, error) {
	bad := func(why string) error {
		return errkind.Wrap(errkind.Invalid, "snapshot pattern %q: %s", pattern, why)
	}
	name := creationDate.ReplaceAllStringFunc(pattern, func(m string) string {
		sub := creationDate.FindStringSubmatch(m)
		return t.Format(sub[1] + sub[2])
	})
	if strings.Contains(name, "{{") || strings.Contains(name, "{%") {
		return "", bad("only {{ creation_date|date:'LAYOUT' }} and %d are understood")
	}
	switch n := strings.Count(name, "%"); {
	case n == 0:
		if !slices.Contains(taken, name) {
			return name, nil
		}
		name += "-%d"
	case n > 1 || !strings.Contains(name, "%d"):
		return "", bad("it may hold %d once, and no other %")
	}
	before, after, _ := strings.Cut(name, "%d")
	next := 0
	for _, k := range taken {
		if num, ok := strings.CutPrefix(k, before); ok {
			if num, ok = strings.CutSuffix(num, after); ok {
				if i, err := strconv.Atoi(num); err == nil && i >= next && num == strconv.Itoa(i) {
					next = i + 1
				}
			}
		}
	}
	return before + strconv.Itoa(next) + after, nil
}

// CheckPattern checks pattern with a sample time: the names it renders
// must pass check, the owner's rule for snapshot names.
func CheckPattern(pattern string, check func(string) error) error {
	name, err := Name(pattern, time.Date(2006, 1, 2, 15, 4, 5, 0, time.UTC), nil)
	if err != nil {
		return err
	}
	if err := check(name); err != nil {
		return fmt.Errorf("snapshot pattern %q: %w", pattern, err)
	}
	return nil
}
