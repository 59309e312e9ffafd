package store

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

func ids(msgs []OutboxMessage) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, m.Key)
	}
	return out
}

func leased(t *testing.T, s *Store, owner string, now time.Time, limit int) []string {
	t.Helper()
	msgs, err := s.DueLeased(context.Background(), owner, now, now.Add(time.Minute), limit)
	if err != nil {
		t.Fatal(err)
	}
	return ids(msgs)
}

// TestDueLeased: a replica's lease keeps a message, and the later messages
// of its run, from the others until the lease ends.
func TestDueLeased(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := b.newStore(t)
		for _, m := range []OutboxMessage{
			{Key: "r1-a", RunID: "r1"}, {Key: "r1-b", RunID: "r1"}, {Key: "r2-a", RunID: "r2"},
			{Key: "notice", RunID: ""}, {Key: "r1-c", RunID: "r1"}, {Key: "r3-a", RunID: "r3"},
		} {
			enqueue(t, s, m)
		}
		now := t0
		equal(t, "A takes the first three", leased(t, s, "A", now, 3), []string{"r1-a", "r1-b", "r2-a"})
		// r1-c waits for r1-a and r1-b, which A holds.
		equal(t, "B takes what A does not hold", leased(t, s, "B", now, 0), []string{"notice", "r3-a"})
		equal(t, "A again: its own, renewed, and r1-c now in order", leased(t, s, "A", now, 0), []string{"r1-a", "r1-b", "r2-a", "r1-c"})
		equal(t, "B holds its own", leased(t, s, "B", now, 0), []string{"notice", "r3-a"})

		// A dies: after its lease B takes its messages; A may not send them.
		later := now.Add(2 * time.Minute)
		got := leased(t, s, "B", later, 0)
		equal(t, "B after A's lease", got, []string{"r1-a", "r1-b", "r2-a", "notice", "r1-c", "r3-a"})
		msgs, _ := s.DueLeased(ctx, "B", later, later.Add(time.Minute), 2)
		held, err := s.HoldMessage(ctx, msgs[0].ID, "A", later.Add(time.Minute))
		if err != nil || held {
			t.Errorf("A holds %s after losing its lease: %v %v", msgs[0].Key, held, err)
		}
		if held, err := s.HoldMessage(ctx, msgs[0].ID, "B", later.Add(time.Minute)); err != nil || !held {
			t.Errorf("B cannot hold its message: %v %v", held, err)
		}
		// Delivered: nobody holds it any more.
		if err := s.Delivered(ctx, msgs[0].ID, "ts", later); err != nil {
			t.Fatal(err)
		}
		if held, _ := s.HoldMessage(ctx, msgs[0].ID, "B", later.Add(time.Minute)); held {
			t.Error("a delivered message is held")
		}
		// Postponed (r1-b): its lease ends, and the run's later messages
		// wait for it, whoever asks.
		if err := s.Postpone(ctx, msgs[1].ID, later.Add(time.Hour), "429"); err != nil {
			t.Fatal(err)
		}
		equal(t, "A after the postponement", leased(t, s, "A", later, 0), []string(nil))
		equal(t, "B after the postponement", leased(t, s, "B", later, 0), []string{"r2-a", "notice", "r3-a"})
	})
}

// TestDueLeasedRace: two replicas lease and deliver one outbox at once;
// every message is delivered once, and each run's messages in order.
func TestDueLeasedRace(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		path := b.path(t)
		s1 := openStore(t, path)
		const runs, per = 4, 15
		for i := range per {
			for r := range runs {
				enqueue(t, s1, OutboxMessage{Key: fmt.Sprintf("r%d-%02d", r, i), RunID: fmt.Sprintf("r%d", r)})
			}
		}
		s2 := openStore(t, path)
		var mu sync.Mutex
		var sent []string
		var wg sync.WaitGroup
		for i, s := range []*Store{s1, s2} {
			owner := fmt.Sprintf("replica-%d", i)
			wg.Go(func() {
				for range 200 {
					now := time.Now()
					msgs, err := s.DueLeased(ctx, owner, now, now.Add(time.Minute), 5)
					if err != nil {
						t.Error(err)
						return
					}
					if len(msgs) == 0 {
						if st, _ := s.Stats(ctx); st.OutboxPending == 0 {
							return
						}
						time.Sleep(time.Millisecond)
						continue
					}
					for _, m := range msgs {
						held, err := s.HoldMessage(ctx, m.ID, owner, time.Now().Add(time.Minute))
						if err != nil || !held {
							t.Errorf("%s lost %s: %v", owner, m.Key, err)
							continue
						}
						mu.Lock()
						sent = append(sent, m.Key)
						mu.Unlock()
						if err := s.Delivered(ctx, m.ID, owner, time.Now()); err != nil {
							t.Error(err)
						}
					}
				}
			})
		}
		wg.Wait()
		if len(sent) != runs*per {
			t.Errorf("sent %d messages, want %d", len(sent), runs*per)
		}
		last := map[string]string{}
		seen := map[string]bool{}
		for _, k := range sent {
			if seen[k] {
				t.Errorf("%s sent twice", k)
			}
			seen[k] = true
			run := k[:2]
			if k < last[run] {
				t.Errorf("%s sent after %s", k, last[run])
			}
			last[run] = k
		}
	})
}

// TestLeaseStep: one owner at a time, renewed by its owner, free when it
// ends or is released.
func TestLeaseStep(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := b.newStore(t)
		create(t, s, "r1", "svc", "staging", 1)
		now := t0
		lease := func(owner string, at time.Time) bool {
			t.Helper()
			ok, err := s.LeaseStep(ctx, "r1", "step-000", owner, at, at.Add(time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			return ok
		}
		if !lease("A", now) {
			t.Fatal("A cannot take a free lease")
		}
		if lease("B", now.Add(30*time.Second)) {
			t.Error("B took A's live lease")
		}
		if !lease("A", now.Add(50*time.Second)) {
			t.Error("A cannot renew")
		}
		if lease("B", now.Add(90*time.Second)) {
			t.Error("B took A's renewed lease")
		}
		if !lease("B", now.Add(111*time.Second)) {
			t.Error("B cannot take A's ended lease")
		}
		if err := s.ReleaseStep(ctx, "r1", "step-000", "A"); err != nil {
			t.Fatal(err)
		}
		if lease("A", now.Add(112*time.Second)) {
			t.Error("A's release freed B's lease")
		}
		if err := s.ReleaseStep(ctx, "r1", "step-000", "B"); err != nil {
			t.Fatal(err)
		}
		if !lease("A", now.Add(113*time.Second)) {
			t.Error("A cannot take a released lease")
		}
		if _, err := s.LeaseStep(ctx, "r1", "nope", "A", now, now); err == nil {
			t.Error("lease of an unknown step succeeded")
		}
		// The lease is no part of the step's check-and-set.
		steps, _ := s.Steps(ctx, "r1")
		if steps[0].Version != 1 {
			t.Errorf("leases changed the step's version to %d", steps[0].Version)
		}
	})
}
