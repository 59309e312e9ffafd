package github

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestSetTopLevelKeepsFormatting(t *testing.T) {
	set := map[string]json.RawMessage{"send_traffic_to_maintenance_page": json.RawMessage("true")}
	tests := []struct {
		name   string
		values map[string]json.RawMessage
		in     string
		want   string
	}{
		{
			name:   "four spaces, key order and trailing newline",
			values: set,
			in:     "{\n    \"zeta\": 1,\n    \"send_traffic_to_maintenance_page\": false,\n    \"alpha\": \"x\"\n}\n",
			want:   "{\n    \"zeta\": 1,\n    \"send_traffic_to_maintenance_page\": true,\n    \"alpha\": \"x\"\n}\n",
		},
		{
			name:   "tabs, CRLF and no trailing newline",
			values: set,
			in:     "{\r\n\t\"send_traffic_to_maintenance_page\" : false,\r\n\t\"b\" : 2\r\n}",
			want:   "{\r\n\t\"send_traffic_to_maintenance_page\" : true,\r\n\t\"b\" : 2\r\n}",
		},
		{
			name:   "missing key appended with the file's indent",
			values: set,
			in:     "{\n  \"cluster\": \"test\",\n  \"namespace\": \"bat-qa\"\n}\n",
			want:   "{\n  \"cluster\": \"test\",\n  \"namespace\": \"bat-qa\",\n  \"send_traffic_to_maintenance_page\": true\n}\n",
		},
		{
			name:   "compact file stays compact",
			values: map[string]json.RawMessage{"a": json.RawMessage("2"), "c": json.RawMessage(`"new"`)},
			in:     `{"a":1,"b":[1,2]}`,
			want:   `{"a":2,"b":[1,2],"c":"new"}`,
		},
		{
			name:   "nested values with tricky strings are skipped, not edited",
			values: map[string]json.RawMessage{"flag": json.RawMessage("true")},
			in:     "{\n  \"nested\": {\"flag\": false, \"s\": \"}{\\\"]\"},\n  \"list\": [{\"flag\": false}],\n  \"flag\": false\n}\n",
			want:   "{\n  \"nested\": {\"flag\": false, \"s\": \"}{\\\"]\"},\n  \"list\": [{\"flag\": false}],\n  \"flag\": true\n}\n",
		},
		{
			name:   "object value replaced whole",
			values: map[string]json.RawMessage{"o": json.RawMessage("null")},
			in:     "{\n  \"o\": {\n    \"x\": 1\n  },\n  \"p\": 2\n}\n",
			want:   "{\n  \"o\": null,\n  \"p\": 2\n}\n",
		},
		{
			name:   "empty object",
			values: set,
			in:     "{}\n",
			want:   "{\n  \"send_traffic_to_maintenance_page\": true\n}\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, changed, err := setTopLevel([]byte(tt.in), tt.values)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got\n%q\nwant\n%q", got, tt.want)
			}
			if !changed {
				t.Error("changed = false")
			}
			if !json.Valid(got) {
				t.Errorf("result is not valid JSON")
			}
		})
	}
}

func TestSetTopLevelUnchangedAndErrors(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr string
	}{
		{name: "value already set", in: "{\n  \"flag\": true\n}\n"},
		{name: "not JSON", in: "flag = true\n", wantErr: "not valid JSON"},
		{name: "top level is an array", in: "[1]", wantErr: "not a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, changed, err := setTopLevel([]byte(tt.in), map[string]json.RawMessage{"flag": json.RawMessage("true")})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || changed || string(got) != tt.in {
				t.Errorf("got %q, changed=%v, err=%v; want the document untouched", got, changed, err)
			}
		})
	}
}

func TestJSONValue(t *testing.T) {
	tests := []struct{ in, want string }{
		{"true", "true"},
		{"false", "false"},
		{"null", "null"},
		{"42", "42"},
		{"-1.5", "-1.5"},
		{"007", `"007"`},
		{`"true"`, `"true"`},
		{"staging", `"staging"`},
		{"a<b>&c", `"a<b>&c"`},
		{"", `""`},
	}
	for _, tt := range tests {
		if got := string(jsonValue(tt.in)); got != tt.want {
			t.Errorf("jsonValue(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}
