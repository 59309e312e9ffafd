package runbook

import (
	"strings"
	"testing"
	"time"
)

func TestParseTime(t *testing.T) {
	tests := []struct {
		name, in string
		want     string // UTC in PTR format; empty means an error
		errHas   string
	}{
		{name: "London in winter is UTC", in: "2026-11-26 09:30 Europe/London", want: "2026-11-26T09:30:00"},
		{name: "London in summer is BST", in: "2026-06-01 09:30 Europe/London", want: "2026-06-01T08:30:00"},
		{name: "seconds", in: "2026-06-01 09:30:15 Europe/London", want: "2026-06-01T08:30:15"},
		{name: "UTC zone", in: "2026-06-01 09:30 UTC", want: "2026-06-01T09:30:00"},
		{name: "RFC 3339 Z", in: "2026-06-01T09:30:00Z", want: "2026-06-01T09:30:00"},
		{name: "RFC 3339 offset", in: "2026-06-01T09:30:00+01:00", want: "2026-06-01T08:30:00"},
		{name: "day before spring forward", in: "2026-03-28 09:30 Europe/London", want: "2026-03-28T09:30:00"},
		{name: "day of spring forward after", in: "2026-03-29 09:30 Europe/London", want: "2026-03-29T08:30:00"},
		{name: "spring-forward gap", in: "2026-03-29 01:30 Europe/London", errHas: "does not exist"},
		{name: "fall-back overlap", in: "2026-10-25 01:30 Europe/London", errHas: "happened twice"},
		{name: "one-digit hour", in: "2026-06-01 9:30 Europe/London", want: "2026-06-01T08:30:00"},
		{name: "one-digit hour in UTC", in: "2026-12-02 4:30 UTC", want: "2026-12-02T04:30:00"},
		{name: "one-digit hour in the spring-forward gap", in: "2026-03-29 1:30 Europe/London", errHas: "does not exist"},
		{name: "after fall back", in: "2026-10-25 09:30 Europe/London", want: "2026-10-25T09:30:00"},
		{name: "no zone", in: "2026-11-26 09:30", errHas: "no time zone"},
		{name: "date only", in: "2026-11-26", errHas: "no time zone"},
		{name: "unknown zone", in: "2026-11-26 09:30 Mars/Olympus", errHas: "unknown time zone"},
		{name: "Local is refused", in: "2026-11-26 09:30 Local", errHas: "unknown time zone"},
		{name: "garbage", in: "yesterday at nine", errHas: "write it as"},
		{name: "bad month", in: "2026-13-26 09:30 UTC", errHas: "cannot read"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseTime(tt.in)
			if tt.want == "" {
				if err == nil || !strings.Contains(err.Error(), tt.errHas) {
					t.Fatalf("ParseTime(%q) = %v, %v; want error containing %q", tt.in, got, err, tt.errHas)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseTime(%q): %v", tt.in, err)
			}
			if s := got.Format(PTRLayout); s != tt.want {
				t.Errorf("ParseTime(%q) = %s UTC, want %s", tt.in, s, tt.want)
			}
		})
	}
}

func TestCheckWindow(t *testing.T) {
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		t      time.Time
		errHas string
	}{
		{"inside", now.Add(-time.Hour), ""},
		{"exactly 5 minutes", now.Add(-5 * time.Minute), ""},
		{"too recent", now.Add(-2 * time.Minute), "at least 5m0s ago"},
		{"future", now.Add(time.Minute), "in the future"},
		{"too old", now.Add(-8 * 24 * time.Hour), "only reaches back 7d0h"},
		{"exactly 7 days", now.Add(-7 * 24 * time.Hour), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckWindow(tt.t, now, 5*time.Minute, 7*24*time.Hour)
			if tt.errHas == "" && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tt.errHas != "" && (err == nil || !strings.Contains(err.Error(), tt.errHas)) {
				t.Fatalf("got %v, want error containing %q", err, tt.errHas)
			}
		})
	}
}

func TestFormatBoth(t *testing.T) {
	london, _ := time.LoadLocation("Europe/London")
	tests := []struct {
		t    time.Time
		want string
	}{
		{time.Date(2026, 6, 1, 8, 30, 0, 0, time.UTC), "2026-06-01 08:30:00 UTC (09:30:00 BST)"},
		{time.Date(2026, 12, 1, 8, 30, 0, 0, time.UTC), "2026-12-01 08:30:00 UTC (08:30:00 GMT)"},
		{time.Date(2026, 6, 1, 23, 30, 0, 0, time.UTC), "2026-06-01 23:30:00 UTC (2026-06-02 00:30:00 BST)"},
	}
	for _, tt := range tests {
		if got := FormatBoth(tt.t, london); got != tt.want {
			t.Errorf("FormatBoth(%v) = %q, want %q", tt.t, got, tt.want)
		}
	}
}

func TestParseInputs(t *testing.T) {
	rb := &Runbook{ID: "s", Inputs: []Input{
		{Name: "restore_time", Type: InputTime, Required: true, MinAge: 5 * time.Minute, MaxAge: 7 * 24 * time.Hour},
		{Name: "mode", Type: InputChoice, Choices: []string{"a", "b"}, Default: "a"},
		{Name: "dr_test", Type: InputBool, Default: "false"},
	}}
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		raw    map[string]string
		errHas []string
		check  func(t *testing.T, got map[string]any)
	}{
		{name: "valid", raw: map[string]string{"restore_time": "2026-11-26 09:30 Europe/London", "dr_test": "true"},
			check: func(t *testing.T, got map[string]any) {
				if got["restore_time"] != "2026-11-26T09:30:00Z" || got["mode"] != "a" || got["dr_test"] != true {
					t.Errorf("got %v", got)
				}
			}},
		{name: "every problem at once", raw: map[string]string{"restore_time": "2026-11-26 09:58 UTC", "mode": "c", "dr_test": "maybe", "colour": "red"},
			errHas: []string{"unknown input \"colour\"", "input restore_time: ", "at least 5m0s ago", "input mode: \"c\" is not one of a, b", "input dr_test: \"maybe\" is not true or false"}},
		{name: "required missing", raw: map[string]string{}, errHas: []string{"input restore_time is required", "Europe/London"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseInputs(rb, tt.raw, now)
			for _, want := range tt.errHas {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("error %v does not contain %q", err, want)
				}
			}
			if tt.check != nil {
				if err != nil {
					t.Fatal(err)
				}
				tt.check(t, got)
			}
		})
	}
}
