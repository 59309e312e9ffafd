package github

import (
	"bytes"
	"encoding/json"
	"errors"
	"sort"
	"strings"
)

// jsonValue turns a step's text value into JSON: true, false, null, numbers
// and double-quoted strings are taken as written (so "\"true\"" is the
// string "true"); anything else becomes a JSON string. Step parameters reach
// actions as text, so this is where `true` becomes a boolean again.
func jsonValue(s string) json.RawMessage {
	t := strings.TrimSpace(s)
	switch {
	case t == "true", t == "false", t == "null":
		return json.RawMessage(t)
	case t != "" && (t[0] == '-' || t[0] >= '0' && t[0] <= '9' || t[0] == '"') && json.Valid([]byte(t)):
		return json.RawMessage(t)
	}
	return jsonString(s)
}

// jsonString encodes s without escaping <, > and & (json.Marshal would).
func jsonString(s string) json.RawMessage {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// member is one top-level member of a JSON object, as byte offsets.
type member struct {
	key       string
	leadStart int // start of the whitespace before the key
	keyStart  int
	keyEnd    int
	valStart  int
	valEnd    int
}

// setTopLevel sets top-level members of the JSON object doc to the given JSON
// values by editing the text: only the values change, so indentation, key
// order, line endings and the trailing newline stay as they were. Missing
// keys are appended after the last member, indented like it. It reports
// whether anything changed.
func setTopLevel(doc []byte, values map[string]json.RawMessage) ([]byte, bool, error) {
	if !json.Valid(doc) {
		return nil, false, errors.New("not valid JSON")
	}
	open, closing, members, err := topLevel(doc)
	if err != nil {
		return nil, false, err
	}

	type edit struct {
		start, end int
		text       []byte
	}
	var edits []edit
	var missing []string
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		found := false
		for _, m := range members {
			if m.key != k {
				continue
			}
			found = true
			if !bytes.Equal(doc[m.valStart:m.valEnd], values[k]) {
				edits = append(edits, edit{m.valStart, m.valEnd, values[k]})
			}
		}
		if !found {
			missing = append(missing, k)
		}
	}

	if len(missing) > 0 {
		var add bytes.Buffer
		if len(members) == 0 {
			for i, k := range missing {
				if i > 0 {
					add.WriteByte(',')
				}
				add.WriteString("\n  ")
				add.Write(jsonString(k))
				add.WriteString(": ")
				add.Write(values[k])
			}
			add.WriteByte('\n')
			edits = append(edits, edit{open + 1, closing, add.Bytes()})
		} else {
			last := members[len(members)-1]
			indent := doc[last.leadStart:last.keyStart]
			colon := doc[last.keyEnd:last.valStart]
			for _, k := range missing {
				add.WriteByte(',')
				add.Write(indent)
				add.Write(jsonString(k))
				add.Write(colon)
				add.Write(values[k])
			}
			edits = append(edits, edit{last.valEnd, last.valEnd, add.Bytes()})
		}
	}
	if len(edits) == 0 {
		return doc, false, nil
	}

	sort.Slice(edits, func(i, j int) bool { return edits[i].start < edits[j].start })
	var out bytes.Buffer
	pos := 0
	for _, e := range edits {
		out.Write(doc[pos:e.start])
		out.Write(e.text)
		pos = e.end
	}
	out.Write(doc[pos:])
	return out.Bytes(), true, nil
}

// topLevel scans a valid JSON document whose top level is an object and
// returns the offsets of its braces and members.
func topLevel(doc []byte) (open, closing int, members []member, err error) {
	open = skipSpace(doc, 0)
	if doc[open] != '{' {
		return 0, 0, nil, errors.New("the top level is not a JSON object")
	}
	i := open + 1
	for {
		lead := i
		i = skipSpace(doc, i)
		if doc[i] == '}' {
			return open, i, members, nil
		}
		m := member{leadStart: lead, keyStart: i}
		m.keyEnd = scanString(doc, i)
		if err := json.Unmarshal(doc[m.keyStart:m.keyEnd], &m.key); err != nil {
			return 0, 0, nil, err
		}
		i = skipSpace(doc, m.keyEnd) + 1 // the colon
		m.valStart = skipSpace(doc, i)
		m.valEnd = scanValue(doc, m.valStart)
		members = append(members, m)
		i = skipSpace(doc, m.valEnd)
		if doc[i] == '}' {
			return open, i, members, nil
		}
		i++ // the comma
	}
}

func skipSpace(doc []byte, i int) int {
	for i < len(doc) && (doc[i] == ' ' || doc[i] == '\t' || doc[i] == '\n' || doc[i] == '\r') {
		i++
	}
	return i
}

// scanString returns the offset just past the string starting at doc[i].
func scanString(doc []byte, i int) int {
	for j := i + 1; j < len(doc); j++ {
		switch doc[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(doc)
}

// scanValue returns the offset just past the value starting at doc[i].
func scanValue(doc []byte, i int) int {
	switch doc[i] {
	case '"':
		return scanString(doc, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(doc); j++ {
			switch doc[j] {
			case '"':
				j = scanString(doc, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return len(doc)
	}
	j := i
	for j < len(doc) && !strings.ContainsRune(",}] \t\r\n", rune(doc[j])) {
		j++
	}
	return j
}
