package bot

import (
	"errors"
	"strings"
	"testing"

	"github.com/slack-go/slack"
)

func TestValueCodec(t *testing.T) {
	tests := []struct {
		name string
		in   ButtonValue
	}{
		{"step", ButtonValue{RunID: "dr-20261126-0930-ab12", StepID: "restore-live", Version: 7}},
		{"run only", ButtonValue{RunID: "dr-20261126-0930-ab12"}},
		{"long ids", ButtonValue{RunID: strings.Repeat("r", 900), StepID: strings.Repeat("s", 900), Version: 1 << 30}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := EncodeValue(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if len(s) > maxValue {
				t.Errorf("value is %d long", len(s))
			}
			got, err := DecodeValue(s)
			if err != nil || got != tt.in {
				t.Errorf("DecodeValue(%q) = %+v, %v; want %+v", s, got, err, tt.in)
			}
		})
	}
}

func TestValueCodecRefuses(t *testing.T) {
	if _, err := EncodeValue(ButtonValue{RunID: strings.Repeat("r", 1994), StepID: "x"}); err == nil || !strings.Contains(err.Error(), "Slack allows 2000") {
		t.Errorf("too long: %v", err)
	}
	if _, err := EncodeValue(ButtonValue{RunID: "a|b"}); err == nil {
		t.Error("a '|' in an id was encoded")
	}
	for _, bad := range []string{"", "v1", "v2|r|s|1", "v1||s|1", "v1|r|s|x", "v1|r|s|-1", "v1|r|s|1|extra"} {
		if _, err := DecodeValue(bad); !errors.Is(err, errValue) {
			t.Errorf("DecodeValue(%q) = %v, want errValue", bad, err)
		}
	}
}

func FuzzDecodeValue(f *testing.F) {
	f.Add("v1|dr-1|step|3")
	f.Add("v1|r||0")
	f.Fuzz(func(t *testing.T, s string) {
		v, err := DecodeValue(s)
		if err != nil {
			return
		}
		again, err := EncodeValue(v)
		if err != nil {
			t.Fatalf("decoded %q to %+v, which does not encode: %v", s, v, err)
		}
		if back, _ := DecodeValue(again); back != v {
			t.Fatalf("round trip of %q: %+v != %+v", s, back, v)
		}
	})
}

func TestChannelName(t *testing.T) {
	tests := []struct {
		base   string
		suffix int
		want   string
	}{
		{"dr-20261126-itt-mentor-services-staging", 1, "dr-20261126-itt-mentor-services-staging"},
		{"dr-20261126-itt-mentor-services-staging", 2, "dr-20261126-itt-mentor-services-staging-2"},
		{"DR 2026/11/26 Big Service!", 1, "dr-2026-11-26-big-service"},
		{strings.Repeat("a", 100), 12, strings.Repeat("a", 77) + "-12"},
	}
	for _, tt := range tests {
		if got := channelName(tt.base, tt.suffix); got != tt.want || len(got) > maxChannelName {
			t.Errorf("channelName(%q, %d) = %q, want %q", tt.base, tt.suffix, got, tt.want)
		}
	}
}

func TestSections(t *testing.T) {
	lines := []string{strings.Repeat("a", 2000), strings.Repeat("b", 2000), strings.Repeat("c", 5000)}
	blocks := sections(lines)
	if len(blocks) != 3 {
		t.Fatalf("%d sections, want 3", len(blocks))
	}
	for i, b := range blocks {
		if n := len([]rune(b.(*slack.SectionBlock).Text.Text)); n > maxSectionText {
			t.Errorf("section %d has %d characters", i, n)
		}
	}
}
