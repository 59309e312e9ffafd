// Package handlers decides what drbot does with a slash command, a button
// click or a submitted form: it parses, validates and calls the engine. It
// knows nothing of Slack's wire format; the bot package turns its replies
// into messages and modals.
package handlers

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/drbot-dev/drbot/runbook"
)

// Verb is what a /dr command asks for.
type Verb string

// The /dr verbs.
const (
	VerbStart  Verb = "start"
	VerbStatus Verb = "status"
	VerbList   Verb = "list"
	VerbHelp   Verb = "help"
	VerbNotify Verb = "notify"
	VerbAbort  Verb = "abort"
	VerbSkip   Verb = "skip"
	VerbRoles  Verb = "roles"
	VerbReport Verb = "report"
	VerbDrills Verb = "drills"
)

// Usage is the help text of /dr.
const Usage = "*Usage*\n" +
	"• `/dr start <scenario> [service=<service>] [env=<env>] [priority=P1|P2|P3] [kind=incident|test] [comms=@<comms lead>] [tech=@<tech lead>] " +
	"[description=\"<one line>\"] [<input>=<value>]…` — start a runbook; " +
	"quote values with spaces: `restore_time=\"2026-11-26 09:30 Europe/London\"`. Missing values open a form.\n" +
	"• `/dr status [<run-id>]` — where a run is (in an incident channel: that channel's run)\n" +
	"• `/dr list` — recent runs\n" +
	"• `/dr notify <text>` — post an update to the stakeholder channels and the timeline\n" +
	"• `/dr roles [comms=@<comms lead>] [tech=@<tech lead>] [lead=@<incident lead>]` — name the leads of this channel's run\n" +
	"• `/dr report [<run-id>]` — upload the incident report (Markdown) into the incident channel\n" +
	"• `/dr drills` — the last DR test of every service, environment and scenario; old ones flagged\n" +
	"• `/dr abort [<run-id>] [<reason>]` — stop a run (approvers only)\n" +
	"• `/dr skip <step-id> <name>=<value> [reason=<why>]` — skip a step whose remembered value a later step needs, giving that value " +
	"(e.g. `/dr skip scale-down previous_replicas=\"web=2 worker=1\"`; approvers only)\n" +
	"• `/dr preflight [service=<service>] [env=<env>]` — check the setup against GitHub, Kubernetes, Azure and Slack (read only)\n" +
	"• `/dr help` — this text"

// Command is a parsed /dr command.
type Command struct {
	Verb     Verb
	Scenario string
	Service  string
	Env      string
	// Inputs are the runbook inputs given as key=value, as typed.
	Inputs map[string]string
	// Comms is the comms lead's user id (comms=@someone), if named; Tech
	// the tech lead's and Lead the incident lead's (roles).
	Comms, Tech, Lead string
	// Priority, Kind and Description are the playbook's declaration, as
	// typed (the engine checks them).
	Priority, Kind, Description string
	// RunID names a run (status, abort) when given.
	RunID string
	// StepID names the step of skip.
	StepID string
	// Text is the update of notify and the reason of abort.
	Text string
}

// keyPattern is what may stand left of '=' in start arguments.
var keyPattern = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)

// Parse reads the text after /dr. Errors are refusals whose text tells the
// user what to type instead.
func Parse(text string) (Command, error) {
	text = normalize(text)
	verb, rest := cut(text)
	switch Verb(strings.ToLower(verb)) {
	case "", VerbHelp:
		return Command{Verb: VerbHelp}, nil
	case VerbStart:
		return parseStart(rest)
	case VerbStatus:
		return parseRunArg(VerbStatus, rest, false)
	case VerbList:
		if rest != "" {
			return Command{}, usageErr("`/dr list` takes no arguments")
		}
		return Command{Verb: VerbList}, nil
	case VerbNotify:
		if rest == "" {
			return Command{}, usageErr("`/dr notify` needs the text of the update, e.g. `/dr notify Restore is running, next update 10:30`")
		}
		return Command{Verb: VerbNotify, Text: rest}, nil
	case VerbAbort:
		return parseRunArg(VerbAbort, rest, true)
	case VerbSkip:
		return parseSkip(rest)
	case VerbPreflight:
		return parsePreflight(rest)
	case VerbRoles:
		return parseRoles(rest)
	case VerbReport:
		return parseRunArg(VerbReport, rest, false)
	case VerbDrills:
		if rest != "" {
			return Command{}, usageErr("`/dr drills` takes no arguments")
		}
		return Command{Verb: VerbDrills}, nil
	}
	return Command{}, usageErr(fmt.Sprintf("unknown command %q", verb))
}

func usageErr(msg string) error {
	return &runbook.Refusal{Text: msg + "\n" + Usage}
}

// normalize undoes what Slack does to command text: HTML-escaped &, < and >,
// and non-breaking spaces some clients insert.
func normalize(s string) string {
	s = strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&", "\u00a0", " ", "\u202f", " ").Replace(s)
	return strings.TrimSpace(s)
}

// cut splits off the first word.
func cut(s string) (first, rest string) {
	i := strings.IndexFunc(s, unicode.IsSpace)
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimSpace(s[i:])
}

// looksLikeRunID tells a run id (dr-20261126-0930-ab12) from free text.
func looksLikeRunID(s string) bool {
	return strings.HasPrefix(s, "dr-") && !strings.ContainsFunc(s, unicode.IsSpace) && len(s) <= 80
}

func parseRunArg(verb Verb, rest string, reason bool) (Command, error) {
	c := Command{Verb: verb}
	first, more := cut(rest)
	if looksLikeRunID(first) {
		c.RunID, rest = first, more
	}
	if rest != "" {
		if !reason {
			return Command{}, usageErr(fmt.Sprintf("`/dr %s` takes at most a run id, got %q", verb, rest))
		}
		c.Text = rest
	}
	return c, nil
}

func parseStart(rest string) (Command, error) {
	words, err := tokenize(rest)
	if err != nil {
		return Command{}, usageErr(err.Error())
	}
	c := Command{Verb: VerbStart, Inputs: map[string]string{}}
	seen := map[string]bool{}
	for i, w := range words {
		if !w.hasEq {
			if i == 0 {
				c.Scenario = w.key
				continue
			}
			return Command{}, usageErr(fmt.Sprintf("unexpected %q: after the scenario write key=value, e.g. service=… env=…", w.key))
		}
		key := strings.ToLower(w.key)
		if !keyPattern.MatchString(key) {
			return Command{}, usageErr(fmt.Sprintf("%q is not a valid name left of '='", w.key))
		}
		if key == "environment" {
			key = "env"
		}
		if seen[key] {
			return Command{}, usageErr(fmt.Sprintf("%s is given twice", key))
		}
		seen[key] = true
		switch key {
		case "service":
			c.Service = w.value
		case "env":
			c.Env = w.value
		case "comms", "comms_lead", "tech", "tech_lead":
			if err := c.setRole(key, w.value); err != nil {
				return Command{}, err
			}
		case "priority":
			c.Priority = w.value
		case "kind":
			c.Kind = w.value
		case "description", "desc":
			c.Description = w.value
		case "scenario":
			if c.Scenario != "" {
				return Command{}, usageErr("the scenario is given twice")
			}
			c.Scenario = w.value
		default:
			c.Inputs[key] = w.value
		}
	}
	return c, nil
}

// roleNames are the keys that name a lead, with what the refusal calls it.
var roleNames = map[string]string{
	"comms": "comms lead", "comms_lead": "comms lead", "tech": "tech lead", "tech_lead": "tech lead",
	"lead": "incident lead", "incident_lead": "incident lead",
}

// setRole names a lead from key=@mention.
func (c *Command) setRole(key, value string) error {
	id, ok := mentionedUser(value)
	if !ok {
		return usageErr(fmt.Sprintf("%s=%s: name the %s with an @mention, e.g. %s=@ana", key, value, roleNames[key], key))
	}
	switch roleNames[key] {
	case "comms lead":
		c.Comms = id
	case "tech lead":
		c.Tech = id
	default:
		c.Lead = id
	}
	return nil
}

// parseRoles reads `[comms=@x] [tech=@y] [lead=@z]`.
func parseRoles(rest string) (Command, error) {
	words, err := tokenize(rest)
	if err != nil {
		return Command{}, usageErr(err.Error())
	}
	c := Command{Verb: VerbRoles}
	for _, w := range words {
		key := strings.ToLower(w.key)
		if _, ok := roleNames[key]; !w.hasEq || !ok {
			return Command{}, usageErr(fmt.Sprintf("`/dr roles` takes comms=@…, tech=@… or lead=@…; got %q", w.key))
		}
		if err := c.setRole(key, w.value); err != nil {
			return Command{}, err
		}
	}
	if c.Comms == "" && c.Tech == "" && c.Lead == "" {
		return Command{}, usageErr("`/dr roles` needs a lead to name, e.g. `/dr roles comms=@ana`")
	}
	return c, nil
}

// parseSkip reads `<step-id> <name>=<value> [reason=<why>]`.
func parseSkip(rest string) (Command, error) {
	words, err := tokenize(rest)
	if err != nil {
		return Command{}, usageErr(err.Error())
	}
	c := Command{Verb: VerbSkip, Inputs: map[string]string{}}
	for i, w := range words {
		switch {
		case i == 0 && !w.hasEq:
			c.StepID = w.key
		case !w.hasEq || !keyPattern.MatchString(w.key):
			return Command{}, usageErr(fmt.Sprintf("`/dr skip` takes the step id, then name=value; got %q", w.key))
		case w.key == "reason":
			c.Text = w.value
		case c.Inputs[w.key] != "" || len(c.Inputs) > 0:
			return Command{}, usageErr("`/dr skip` takes one value: the one the step would have remembered")
		default:
			c.Inputs[w.key] = w.value
		}
	}
	if c.StepID == "" || len(c.Inputs) == 0 {
		return Command{}, usageErr("`/dr skip` needs the step id and the value its later steps need, e.g. `/dr skip scale-down previous_replicas=\"web=2 worker=1\"`")
	}
	return c, nil
}

// word is one argument: a bare word, or key=value.
type word struct {
	key, value string
	hasEq      bool
}

// Quote characters: straight quotes and the curly ones Slack clients
// substitute ("smart quotes").
var (
	doubleQuotes = []rune{'"', '“', '”', '„', '‟', '«', '»'}
	singleQuotes = []rune{'\'', '‘', '’', '‚', '‛'}
)

// tokenize splits arguments on spaces; double quotes (any style) group
// anywhere, single quotes only when they open a word or a value, so an
// apostrophe inside a word stays text. A backslash inside quotes escapes the
// next character.
func tokenize(s string) ([]word, error) {
	var (
		out     []word
		cur     strings.Builder
		w       word
		inWord  bool
		closing []rune // the quote family being read, nil outside quotes
	)
	flush := func() {
		if !inWord {
			return
		}
		if w.hasEq {
			w.value = cur.String()
		} else {
			w.key = cur.String()
		}
		out = append(out, w)
		w, inWord = word{}, false
		cur.Reset()
	}
	runes := []rune(s)
	for i := 0; i < len(runes); i++ {
		r := runes[i]
		switch {
		case closing != nil && r == '\\' && i+1 < len(runes):
			i++
			cur.WriteRune(runes[i])
		case closing != nil && slices.Contains(closing, r):
			closing = nil
		case closing != nil:
			cur.WriteRune(r)
		case unicode.IsSpace(r):
			flush()
		case slices.Contains(doubleQuotes, r):
			inWord, closing = true, doubleQuotes
		case slices.Contains(singleQuotes, r) && (cur.Len() == 0):
			inWord, closing = true, singleQuotes
		case r == '=' && !w.hasEq:
			if cur.Len() == 0 {
				return nil, fmt.Errorf("'=' needs a name on its left, e.g. env=staging")
			}
			w.key, w.hasEq = cur.String(), true
			inWord = true
			cur.Reset()
		default:
			inWord = true
			cur.WriteRune(r)
		}
	}
	if closing != nil {
		return nil, fmt.Errorf("a quote is not closed in %q", s)
	}
	flush()
	return out, nil
}

// String writes the command back as Slack would send its text: Parse reads
// it to the same command (the fuzz test checks this).
func (c Command) String() string {
	parts := []string{string(c.Verb)}
	switch c.Verb {
	case VerbStart:
		if c.Scenario != "" {
			parts = append(parts, quoteIfNeeded(c.Scenario, false))
		}
		if c.Service != "" {
			parts = append(parts, "service="+quoteIfNeeded(c.Service, true))
		}
		if c.Env != "" {
			parts = append(parts, "env="+quoteIfNeeded(c.Env, true))
		}
		if c.Comms != "" {
			parts = append(parts, "comms=<@"+c.Comms+">")
		}
		if c.Tech != "" {
			parts = append(parts, "tech=<@"+c.Tech+">")
		}
		for key, v := range map[string]string{"priority": c.Priority, "kind": c.Kind, "description": c.Description} {
			if v != "" {
				parts = append(parts, key+"="+quoteIfNeeded(v, true))
			}
		}
		for _, k := range runbook.SortedKeys(c.Inputs) {
			parts = append(parts, k+"="+quoteIfNeeded(c.Inputs[k], true))
		}
	case VerbRoles:
		for key, id := range map[string]string{"comms": c.Comms, "tech": c.Tech, "lead": c.Lead} {
			if id != "" {
				parts = append(parts, key+"=<@"+id+">")
			}
		}
	case VerbStatus, VerbAbort, VerbReport:
		if c.RunID != "" {
			parts = append(parts, c.RunID)
		}
		if c.Text != "" {
			parts = append(parts, c.Text)
		}
	case VerbNotify:
		parts = append(parts, c.Text)
	case VerbSkip:
		parts = append(parts, quoteIfNeeded(c.StepID, false))
		for _, k := range runbook.SortedKeys(c.Inputs) {
			parts = append(parts, k+"="+quoteIfNeeded(c.Inputs[k], true))
		}
		if c.Text != "" {
			parts = append(parts, "reason="+quoteIfNeeded(c.Text, true))
		}
	}
	// Slack sends &, < and > HTML-escaped; write them the same way.
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(strings.Join(parts, " "))
}

// quoteIfNeeded quotes s when it would not read back as one word.
func quoteIfNeeded(s string, value bool) string {
	plain := s != "" && !strings.ContainsFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || r == '\\' || slices.Contains(doubleQuotes, r) || slices.Contains(singleQuotes, r) || (!value && r == '=')
	})
	if plain {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		if r == '\\' || slices.Contains(doubleQuotes, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteByte('"')
	return b.String()
}

// Truncate shortens s to at most n runes, marking the cut with an ellipsis.
func Truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	if n <= 1 {
		return string([]rune(s)[:max(n, 0)])
	}
	return string([]rune(s)[:n-1]) + "…"
}

// userMention is how Slack writes an @mention in an escaped command:
// <@U0123ABCD> or <@U0123ABCD|ana>.
var userMention = regexp.MustCompile(`^<@([UW][A-Z0-9]{2,})(\|[^>]*)?>$`)

// mentionedUser returns the user id of an @mention or a bare user id.
func mentionedUser(s string) (string, bool) {
	if m := userMention.FindStringSubmatch(s); m != nil {
		return m[1], true
	}
	if slackUser.MatchString(s) {
		return s, true
	}
	return "", false
}
