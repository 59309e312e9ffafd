package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/drbot-dev/drbot/runbook"
)

// enqueue stores m and returns its id.
func enqueue(t *testing.T, s *Store, m OutboxMessage) int64 {
	t.Helper()
	id, err := s.Enqueue(context.Background(), m)
	if err != nil {
		t.Fatalf("enqueue %s: %v", m.Key, err)
	}
	return id
}

// dueKeys lists the keys of the messages due at now.
func dueKeys(t *testing.T, s *Store, now time.Time, limit int) []string {
	t.Helper()
	msgs, err := s.Due(context.Background(), now, limit)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, m := range msgs {
		keys = append(keys, m.Key)
	}
	return keys
}

func TestEnqueueIsIdempotent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := b.newStore(t)
		m := OutboxMessage{Key: "event:r1:1", RunID: "r1", Kind: "timeline", Payload: []byte(`{"text":"started"}`)}
		id := enqueue(t, s, m)
		m.Payload = []byte(`{"text":"replayed"}`)
		if again := enqueue(t, s, m); again != id {
			t.Errorf("second enqueue id = %d, want %d", again, id)
		}
		msgs, err := s.Due(context.Background(), t0, 0)
		if err != nil {
			t.Fatal(err)
		}
		want := []OutboxMessage{{ID: id, Key: "event:r1:1", RunID: "r1", Kind: "timeline", Payload: []byte(`{"text":"started"}`)}}
		equal(t, "due", msgs, want)

		if _, err := s.Enqueue(context.Background(), OutboxMessage{Kind: "timeline"}); err == nil {
			t.Error("enqueue without a key succeeded")
		}
	})
}

func TestDue(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := b.newStore(t)
		for _, m := range []OutboxMessage{
			{Key: "a"},                              // as soon as possible
			{Key: "b", NextAt: t0.Add(time.Minute)}, // later
			{Key: "c", NextAt: t0},                  // exactly now
			{Key: "d", NextAt: t0.Add(-time.Hour)},
		} {
			enqueue(t, s, m)
		}
		tests := []struct {
			name  string
			now   time.Time
			limit int
			want  []string
		}{
			{"now, in id order", t0, 0, []string{"a", "c", "d"}},
			{"limit", t0, 2, []string{"a", "c"}},
			{"a nanosecond early", t0.Add(-time.Nanosecond), 0, []string{"a", "d"}},
			{"later, in UTC", t0.Add(time.Minute).UTC(), 0, []string{"a", "b", "c", "d"}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				equal(t, "due keys", dueKeys(t, s, tt.now, tt.limit), tt.want)
			})
		}
	})
}

// A run's message waiting for its next attempt holds back the later ones of
// the same run (a timeline keeps its order across a restart), not others.
func TestDueKeepsEachRunsOrder(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := b.newStore(t)
		first := enqueue(t, s, OutboxMessage{Key: "r1:1", RunID: "r1"})
		enqueue(t, s, OutboxMessage{Key: "r1:2", RunID: "r1"})
		enqueue(t, s, OutboxMessage{Key: "r2:1", RunID: "r2"})
		enqueue(t, s, OutboxMessage{Key: "post", RunID: ""})
		if err := s.Postpone(context.Background(), first, t0.Add(time.Second), "slack: rate limited"); err != nil {
			t.Fatal(err)
		}
		equal(t, "due while r1:1 waits", dueKeys(t, s, t0, 0), []string{"r2:1", "post"})
		equal(t, "due once it may go", dueKeys(t, s, t0.Add(time.Second), 0), []string{"r1:1", "r1:2", "r2:1", "post"})
	})
}

func TestPostponeAndDeliver(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := b.newStore(t)
		id := enqueue(t, s, OutboxMessage{Key: "panel:r1", RunID: "r1", Kind: "panel"})
		other := enqueue(t, s, OutboxMessage{Key: "event:r2:1", RunID: "r2", Kind: "timeline"}) // another run's: not held back

		// Slack answered 429 Retry-After: 30.
		next := t0.Add(30 * time.Second)
		if err := s.Postpone(ctx, id, next, "slack: rate limited"); err != nil {
			t.Fatal(err)
		}
		equal(t, "due while postponed", dueKeys(t, s, t0, 0), []string{"event:r2:1"})
		msgs, err := s.Due(ctx, next, 0)
		if err != nil {
			t.Fatal(err)
		}
		got := msgs[0]
		if got.ID != id || got.Attempts != 1 || got.LastError != "slack: rate limited" || !got.NextAt.Equal(next) || got.NextAt.Location() != time.UTC {
			t.Errorf("postponed message = %+v", got)
		}

		if _, ok, err := s.OutboxResult(ctx, "panel:r1"); ok || err != nil {
			t.Errorf("result before delivery: ok %v err %v, want none", ok, err)
		}
		if err := s.Delivered(ctx, id, "1764149400.000100", next); err != nil {
			t.Fatal(err)
		}
		equal(t, "due after delivery", dueKeys(t, s, next, 0), []string{"event:r2:1"})
		if res, ok, err := s.OutboxResult(ctx, "panel:r1"); res != "1764149400.000100" || !ok || err != nil {
			t.Errorf("result = %q %v %v, want the ts", res, ok, err)
		}

		// A late duplicate delivery or failure report changes nothing.
		if err := s.Delivered(ctx, id, "9.9", next.Add(time.Second)); err != nil {
			t.Errorf("second delivery: %v", err)
		}
		if err := s.Postpone(ctx, id, next.Add(time.Hour), "late failure"); err != nil {
			t.Errorf("postpone after delivery: %v", err)
		}
		if res, _, _ := s.OutboxResult(ctx, "panel:r1"); res != "1764149400.000100" {
			t.Errorf("result = %q after a duplicate delivery, want the first", res)
		}
		equal(t, "due after late reports", dueKeys(t, s, next.Add(2*time.Hour), 0), []string{"event:r2:1"})
		if _, ok, _ := s.OutboxResult(ctx, "nope"); ok {
			t.Error("result of an unknown key")
		}

		tests := []struct {
			name string
			call func() error
		}{
			{"delivered", func() error { return s.Delivered(ctx, other+100, "x", t0) }},
			{"postpone", func() error { return s.Postpone(ctx, other+100, t0, "x") }},
		}
		for _, tt := range tests {
			t.Run("unknown id "+tt.name, func(t *testing.T) {
				if err := tt.call(); !errors.Is(err, runbook.ErrNotFound) {
					t.Errorf("err = %v, want ErrNotFound", err)
				}
			})
		}
		if err := s.Delivered(ctx, other, "x", time.Time{}); err == nil {
			t.Error("delivered at zero time succeeded")
		}
	})
}
