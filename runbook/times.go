package runbook

import (
	"fmt"
	"strings"
	"time"
	_ "time/tzdata" // zone names must resolve on minimal images too
)

// TimeFormats are what a time input accepts, for help texts.
const TimeFormats = `"2026-11-26 09:30 Europe/London", "2026-11-26 09:30:15 UTC" or RFC 3339 ("2026-11-26T09:30:00Z", "2026-11-26T09:30:00+01:00")`

// ParseTime reads a time with an explicit zone: "YYYY-MM-DD HH:MM[:SS] Zone/Name"
// or RFC 3339 with an offset or Z. A time without a zone is refused: during
// BST an unzoned time is off by an hour, which is exactly the seed's warning.
func ParseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	i := strings.LastIndex(s, " ")
	if i < 0 {
		return time.Time{}, fmt.Errorf("%q has no time zone; write it as %s", s, TimeFormats)
	}
	local, zone := strings.TrimSpace(s[:i]), s[i+1:]
	if _, err := time.Parse("2006-01-02", local); err == nil || !strings.Contains(local, ":") {
		return time.Time{}, fmt.Errorf("%q has no time zone or no time of day; write it as %s", s, TimeFormats)
	}
	loc, err := time.LoadLocation(zone)
	if err != nil || zone == "Local" {
		return time.Time{}, fmt.Errorf("%q: unknown time zone %q; use an IANA name such as Europe/London or UTC", s, zone)
	}
	for _, layout := range []string{"2006-01-02 15:04", "2006-01-02 15:04:05"} {
		t, err := time.ParseInLocation(layout, local, loc)
		if err != nil {
			continue
		}
		// Clock changes make some local times not exist (spring forward) and
		// others happen twice (fall back); guessing is an hour of lost data.
		// The wall clock is compared as read, so "9:30" is 09:30.
		wall, _ := time.Parse(layout, local)
		if !sameWallClock(t.In(loc), wall) {
			return time.Time{}, fmt.Errorf("%q does not exist in %s (the clocks went forward); give the time in UTC or with an offset", s, zone)
		}
		for _, other := range []time.Time{t.Add(-time.Hour), t.Add(time.Hour)} {
			if sameWallClock(other.In(loc), wall) {
				return time.Time{}, fmt.Errorf("%q happened twice in %s (the clocks went back); give it in UTC or with an offset, e.g. 2026-10-25T01:30:00+01:00", s, zone)
			}
		}
		return t.UTC(), nil
	}
	return time.Time{}, fmt.Errorf("%q: cannot read the date and time; write it as %s", s, TimeFormats)
}

// sameWallClock reports whether a and b read the same date and time of day.
func sameWallClock(a, b time.Time) bool {
	return a.Format("2006-01-02 15:04:05") == b.Format("2006-01-02 15:04:05")
}

// CheckWindow refuses t unless it lies between minAge and maxAge before now
// (zero bounds are open). The PTR window is 5 minutes to 7 days.
func CheckWindow(t, now time.Time, minAge, maxAge time.Duration) error {
	age := now.Sub(t)
	switch {
	case age < 0 && minAge > 0:
		return fmt.Errorf("%s is in the future; point-in-time restore needs a time at least %s ago", FormatUTC(t), HumanDuration(minAge))
	case minAge > 0 && age < minAge:
		return fmt.Errorf("%s is only %s ago; point-in-time restore needs a time at least %s ago", FormatUTC(t), HumanDuration(age), HumanDuration(minAge))
	case maxAge > 0 && age > maxAge:
		return fmt.Errorf("%s is %s ago; point-in-time restore only reaches back %s", FormatUTC(t), HumanDuration(age), HumanDuration(maxAge))
	}
	return nil
}

// FormatUTC formats t as "2026-11-26 09:30:00 UTC".
func FormatUTC(t time.Time) string {
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// FormatBoth formats t in UTC and in loc, e.g.
// "2026-06-01 08:30:00 UTC (09:30:00 BST)": the timeline shows both.
func FormatBoth(t time.Time, loc *time.Location) string {
	if loc == nil || loc == time.UTC {
		return FormatUTC(t)
	}
	l := t.In(loc)
	layout := "15:04:05 MST"
	if l.YearDay() != t.UTC().YearDay() {
		layout = "2006-01-02 15:04:05 MST"
	}
	return FormatUTC(t) + " (" + l.Format(layout) + ")"
}

// HumanDuration writes d the way a person says it: 3m12s, 2h5m, 6d4h.
func HumanDuration(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	d = d.Round(time.Second)
	switch {
	case d >= 48*time.Hour:
		days := d / (24 * time.Hour)
		return fmt.Sprintf("%dd%dh", days, (d-days*24*time.Hour)/time.Hour)
	case d >= time.Hour:
		return fmt.Sprintf("%dh%dm", d/time.Hour, (d%time.Hour)/time.Minute)
	}
	return d.String()
}
