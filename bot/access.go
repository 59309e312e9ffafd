package bot

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/slack-go/slack"
	"go.uber.org/zap"

	"github.com/drbot-dev/drbot/handlers"
	"github.com/drbot-dev/drbot/runbook"
)

// groupLister lists a user group's members (usergroups.users.list).
type groupLister interface {
	GetUserGroupMembersContext(ctx context.Context, group string, opts ...slack.GetUserGroupMembersOption) ([]string, error)
}

// access is a set of principals: users by id, and user groups resolved
// through usergroups.users.list and cached for ttl. A background refresh
// (Bot.Run) keeps the cache warm, so the ack path can answer from memory.
type access struct {
	users  []string
	groups []string
	api    groupLister
	ttl    time.Duration
	log    *zap.Logger

	mu      sync.Mutex
	members map[string]bool // users of all groups
	loaded  time.Time
}

var (
	_ runbook.Authorizer = (*access)(nil)
	_ handlers.Access    = (*access)(nil)
)

func newAccess(p Principals, api groupLister, ttl time.Duration, log *zap.Logger) *access {
	return &access{users: p.Users, groups: p.Groups, api: api, ttl: ttl, log: log}
}

// MayAct reports whether user is one of the principals, refreshing group
// members when the cache is older than ttl. A failed refresh falls back to
// the last members known.
func (a *access) MayAct(ctx context.Context, user string) (bool, error) {
	if slices.Contains(a.users, user) {
		return true, nil
	}
	if len(a.groups) == 0 {
		return false, nil
	}
	a.mu.Lock()
	fresh := a.members != nil && time.Since(a.loaded) < a.ttl
	ok := a.members[user]
	a.mu.Unlock()
	if fresh {
		return ok, nil
	}
	if err := a.refresh(ctx); err != nil {
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.members == nil {
			return false, err
		}
		a.log.Warn("user groups not refreshed; using the last members known", zap.Error(err))
		return a.members[user], nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.members[user], nil
}

// Cached answers from memory: known is false when the group members were
// never loaded or are much older than ttl.
func (a *access) Cached(user string) (allowed, known bool) {
	if slices.Contains(a.users, user) {
		return true, true
	}
	if len(a.groups) == 0 {
		return false, true
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.members == nil || time.Since(a.loaded) > 3*a.ttl {
		return false, false
	}
	return a.members[user], true
}

// Members returns every user: the users and the groups' members.
func (a *access) Members(ctx context.Context) ([]string, error) {
	if _, err := a.MayAct(ctx, ""); err != nil {
		return slices.Clone(a.users), err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	out := slices.Clone(a.users)
	for u := range a.members {
		out = append(out, u)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// refresh loads every group's members.
func (a *access) refresh(ctx context.Context) error {
	members := map[string]bool{}
	var errs []error
	for _, g := range a.groups {
		users, err := a.api.GetUserGroupMembersContext(ctx, g)
		if err != nil {
			errs = append(errs, fmt.Errorf("members of user group %s: %w", g, err))
			continue
		}
		for _, u := range users {
			members[u] = true
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	a.mu.Lock()
	a.members, a.loaded = members, time.Now()
	a.mu.Unlock()
	return nil
}

// keepFresh refreshes the groups every ttl/2 until ctx ends.
func (a *access) keepFresh(ctx context.Context) {
	if len(a.groups) == 0 {
		return
	}
	for {
		if err := a.refresh(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn("refresh user groups", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(a.ttl / 2):
		}
	}
}

// anyOf allows whoever one of its parts allows.
type anyOf []handlers.Access

// MayAct asks each part in turn.
func (o *anyOf) MayAct(ctx context.Context, user string) (bool, error) {
	var errs []error
	for _, a := range *o {
		ok, err := a.MayAct(ctx, user)
		if ok {
			return true, nil
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return false, errors.Join(errs...)
}

// Cached allows when any part allows from memory, refuses when all parts
// know, and is unknown otherwise.
func (o *anyOf) Cached(user string) (allowed, known bool) {
	known = true
	for _, a := range *o {
		ok, k := a.Cached(user)
		if ok && k {
			return true, true
		}
		known = known && k
	}
	return false, known
}
