package bot

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/drbot-dev/drbot/handlers"
)

// Slack's size limits, enforced here and only here.
const (
	// maxActionID and maxBlockID: "Maximum length for this field is 255
	// characters." (https://api.slack.com/reference/block-kit/block-elements#button,
	// https://api.slack.com/reference/block-kit/blocks).
	maxActionID = 255
	maxBlockID  = 255
	// maxValue: a button's value, "Maximum length for this field is 2000
	// characters." (https://api.slack.com/reference/block-kit/block-elements#button).
	maxValue = 2000
	// maxSectionText: a section's text, "Maximum length for the text in this
	// field is 3000 characters." (https://api.slack.com/reference/block-kit/blocks#section).
	maxSectionText = 3000
	// maxHeaderText: "Maximum length for the text in this field is 150
	// characters." (https://api.slack.com/reference/block-kit/blocks#header).
	maxHeaderText = 150
	// maxButtonText: a button's text, "Maximum length ... is 75 characters."
	maxButtonText = 75
	// maxContextElements: a context block holds at most 10 elements.
	maxContextElements = 10
	// maxMessageBlocks: a message holds at most 50 blocks
	// (https://api.slack.com/reference/block-kit/blocks).
	maxMessageBlocks = 50
	// maxTopic and maxPurpose: conversations.setTopic / setPurpose accept 250
	// characters (https://api.slack.com/methods/conversations.setTopic).
	maxTopic = 250
	// maxChannelName: "Channel names ... can be up to 80 characters."
	// (https://api.slack.com/methods/conversations.create).
	maxChannelName = 80
	// maxModalTitle: a modal's title, "Maximum length ... 24 characters."
	// (https://api.slack.com/reference/surfaces/views).
	maxModalTitle = 24
	// maxPrivateMetadata: a view's private_metadata, 3000 characters.
	maxPrivateMetadata = 3000
	// maxLabel, maxHint and maxOptionText: input labels 2000, hints 2000,
	// option texts 75 characters (https://api.slack.com/reference/block-kit/blocks#input,
	// https://api.slack.com/reference/block-kit/composition-objects#option).
	maxLabel      = 2000
	maxHint       = 2000
	maxOptionText = 75
	// maxOptionValue and maxStaticOptions: an option's value is at most 150
	// characters and a static select has at most 100 options
	// (https://api.slack.com/reference/block-kit/block-elements#static_select).
	maxOptionValue   = 150
	maxStaticOptions = 100
)

// truncate shortens s to n runes with an ellipsis (see handlers.Truncate).
func truncate(s string, n int) string { return handlers.Truncate(s, n) }

// ButtonValue is what a button carries: the run, the step and the step's
// version when the message was rendered (the engine's check-and-set).
type ButtonValue struct {
	RunID   string
	StepID  string
	Version int
}

// valuePrefix versions the codec, so a button from an older drbot is
// recognised rather than misread.
const valuePrefix = "v1"

// errValue is returned for values this codec did not write.
var errValue = errors.New("not a drbot button value")

// EncodeValue writes a ButtonValue as "v1|<run>|<step>|<version>". Run and
// step ids never contain '|' (runbook ids are [a-z0-9-]); the length is
// checked against Slack's limit.
func EncodeValue(v ButtonValue) (string, error) {
	if strings.Contains(v.RunID, "|") || strings.Contains(v.StepID, "|") {
		return "", fmt.Errorf("encode button value: %q/%q contains '|'", v.RunID, v.StepID)
	}
	s := strings.Join([]string{valuePrefix, v.RunID, v.StepID, strconv.Itoa(v.Version)}, "|")
	if len(s) > maxValue {
		return "", fmt.Errorf("encode button value: %d characters, Slack allows %d", len(s), maxValue)
	}
	return s, nil
}

// DecodeValue reads what EncodeValue wrote.
func DecodeValue(s string) (ButtonValue, error) {
	parts := strings.Split(s, "|")
	if len(parts) != 4 || parts[0] != valuePrefix || parts[1] == "" {
		return ButtonValue{}, fmt.Errorf("decode %q: %w", truncate(s, 40), errValue)
	}
	n, err := strconv.Atoi(parts[3])
	if err != nil || n < 0 {
		return ButtonValue{}, fmt.Errorf("decode %q: bad version: %w", truncate(s, 40), errValue)
	}
	return ButtonValue{RunID: parts[1], StepID: parts[2], Version: n}, nil
}
