package runbook

// IsPlaceholder reports whether a rendered value holds a value remembered by
// an earlier step that a plan cannot know yet ("<ptr_server, remembered by
// step prepare-ptr>"): preflight leaves such values unchecked.
func IsPlaceholder(s string) bool { return placeholderPattern.MatchString(s) }
