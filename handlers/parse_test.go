package handlers

import (
	"reflect"
	"strings"
	"testing"

	"github.com/drbot-dev/drbot/runbook"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		text string
		want Command
	}{
		{"empty is help", "  ", Command{Verb: VerbHelp}},
		{"help", "help", Command{Verb: VerbHelp}},
		{"start bare", "start", Command{Verb: VerbStart, Inputs: map[string]string{}}},
		{"start scenario only", "start scenario-2", Command{Verb: VerbStart, Scenario: "scenario-2", Inputs: map[string]string{}}},
		{
			"start full with straight quotes",
			`start scenario-2 service=itt-mentor-services env=staging restore_time="2026-11-26 09:30 Europe/London"`,
			Command{Verb: VerbStart, Scenario: "scenario-2", Service: "itt-mentor-services", Env: "staging",
				Inputs: map[string]string{"restore_time": "2026-11-26 09:30 Europe/London"}},
		},
		{
			"smart quotes from a Slack client",
			"start scenario-2 env=staging service=itt-mentor-services restore_time=“2026-11-26 09:30 Europe/London”",
			Command{Verb: VerbStart, Scenario: "scenario-2", Service: "itt-mentor-services", Env: "staging",
				Inputs: map[string]string{"restore_time": "2026-11-26 09:30 Europe/London"}},
		},
		{
			"same curly quote both ends",
			"start scenario-2 restore_time=”2026-11-26 09:30 UTC”",
			Command{Verb: VerbStart, Scenario: "scenario-2", Inputs: map[string]string{"restore_time": "2026-11-26 09:30 UTC"}},
		},
		{
			"single quotes and quoted key part",
			"start scenario-2 ptr_server='my server' environment=staging",
			Command{Verb: VerbStart, Scenario: "scenario-2", Env: "staging", Inputs: map[string]string{"ptr_server": "my server"}},
		},
		{
			"curly single quotes",
			"start scenario-2 ptr_server=‘a b’",
			Command{Verb: VerbStart, Scenario: "scenario-2", Inputs: map[string]string{"ptr_server": "a b"}},
		},
		{
			"escaped quote inside quotes",
			`start s note="say \"hi\""`,
			Command{Verb: VerbStart, Scenario: "s", Inputs: map[string]string{"note": `say "hi"`}},
		},
		{
			"verb and keys are case-insensitive, values are not",
			"START scenario-2 Service=ITT",
			Command{Verb: VerbStart, Scenario: "scenario-2", Service: "ITT", Inputs: map[string]string{}},
		},
		{
			"comms lead as an escaped mention",
			"start scenario-2 comms=<@U0COMMS1|ana> env=staging",
			Command{Verb: VerbStart, Scenario: "scenario-2", Env: "staging", Comms: "U0COMMS1", Inputs: map[string]string{}},
		},
		{
			"comms lead as a user id",
			"start scenario-2 comms_lead=U0COMMS1",
			Command{Verb: VerbStart, Scenario: "scenario-2", Comms: "U0COMMS1", Inputs: map[string]string{}},
		},
		{
			"scenario as key",
			"start scenario=scenario-1 dr_test=true",
			Command{Verb: VerbStart, Scenario: "scenario-1", Inputs: map[string]string{"dr_test": "true"}},
		},
		{
			"non-breaking spaces and html escapes",
			"start\u00a0scenario-2 note=a&amp;b&lt;c",
			Command{Verb: VerbStart, Scenario: "scenario-2", Inputs: map[string]string{"note": "a&b<c"}},
		},
		{
			"value keeps later equals signs",
			"start s x=a=b",
			Command{Verb: VerbStart, Scenario: "s", Inputs: map[string]string{"x": "a=b"}},
		},
		{"status", "status", Command{Verb: VerbStatus}},
		{"status of a run", "status dr-20261126-0930-ab12", Command{Verb: VerbStatus, RunID: "dr-20261126-0930-ab12"}},
		{"list", "list", Command{Verb: VerbList}},
		{"notify keeps text as typed", "notify  Restore running; it's 50% done “soon”", Command{Verb: VerbNotify, Text: "Restore running; it's 50% done “soon”"}},
		{"abort", "abort", Command{Verb: VerbAbort}},
		{"abort with reason", "abort wrong restore time", Command{Verb: VerbAbort, Text: "wrong restore time"}},
		{"abort run with reason", "abort dr-1 wrong time", Command{Verb: VerbAbort, RunID: "dr-1", Text: "wrong time"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.text)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.text, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse(%q)\n got %#v\nwant %#v", tt.text, got, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, text, want string
	}{
		{"unknown verb", "begin scenario-2", `unknown command "begin"`},
		{"unclosed quote", `start s restore_time="2026-11-26 09:30`, "quote is not closed"},
		{"unclosed smart quote", "start s restore_time=“2026", "quote is not closed"},
		{"second positional", "start scenario-2 staging", `unexpected "staging"`},
		{"empty key", "start s =x", "needs a name on its left"},
		{"bad key", "start s Bad.Key=x", "not a valid name"},
		{"duplicate", "start s env=a environment=b", "env is given twice"},
		{"scenario twice", "start s scenario=t", "scenario is given twice"},
		{"list with args", "list all", "takes no arguments"},
		{"notify without text", "notify", "needs the text"},
		{"status with junk", "status now please", "takes at most a run id"},
		{"comms lead as plain text", "start s comms=@ana", "name the comms lead with an @mention"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.text)
			if err == nil {
				t.Fatalf("Parse(%q) = nil error, want %q", tt.text, tt.want)
			}
			text, ok := runbook.IsRefusal(err)
			if !ok {
				t.Fatalf("Parse(%q) error %v is not a refusal", tt.text, err)
			}
			if !strings.Contains(text, tt.want) || !strings.Contains(text, "/dr start") {
				t.Errorf("Parse(%q) = %q, want it to contain %q and the usage", tt.text, text, tt.want)
			}
		})
	}
}

// FuzzParse checks that Parse never panics and that what it accepts reads
// back the same after Command.String.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"", "help", "start scenario-2 service=itt-mentor-services env=staging restore_time=\"2026-11-26 09:30 Europe/London\"",
		"start s x=“a b” y='c d'", `start s n="a \"b\" \\ c"`, "notify hello &amp; bye", "abort dr-1 because",
		"status dr-2", "start \"a=b\"", "start s x=", "start s x=\"\"", "list",
		`skip scale-down previous_replicas="web=2 worker=1" reason="already down"`, "skip s x=", "skip s x=1 y=2",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		c1, err := Parse(text)
		if err != nil {
			if _, ok := runbook.IsRefusal(err); !ok {
				t.Fatalf("Parse(%q) error is not a refusal: %v", text, err)
			}
			return
		}
		c2, err := Parse(c1.String())
		if err != nil {
			t.Fatalf("Parse(%q) ok, but its String %q fails: %v", text, c1.String(), err)
		}
		if !reflect.DeepEqual(c1, c2) {
			t.Fatalf("round trip of %q via %q:\n got %#v\nwant %#v", text, c1.String(), c2, c1)
		}
	})
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"hello", 5, "hello"},
		{"hello", 4, "hel…"},
		{"héllo wörld", 6, "héllo…"},
		{"abc", 1, "a"},
		{"abc", 0, ""},
	}
	for _, tt := range tests {
		if got := Truncate(tt.in, tt.n); got != tt.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}
