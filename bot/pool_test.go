package bot

import (
	"slices"
	"testing"
)

func TestPoolQueuesInsteadOfRefusing(t *testing.T) {
	tests := []struct {
		name    string
		workers int
		tasks   int
	}{
		{name: "one worker, many clicks", workers: 1, tasks: 200},
		{name: "more workers than clicks", workers: 16, tasks: 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPool(tt.workers)
			block := make(chan struct{})
			got := make(chan int, tt.tasks)
			for i := range tt.tasks {
				if !p.acquire() {
					t.Fatalf("task %d refused", i)
				}
				p.run(func() {
					<-block
					got <- i
				})
			}
			close(block)
			p.wait()
			close(got)
			var order []int
			for i := range got {
				order = append(order, i)
			}
			if len(order) != tt.tasks {
				t.Fatalf("%d of %d tasks ran", len(order), tt.tasks)
			}
			if tt.workers == 1 && !slices.IsSorted(order) {
				t.Errorf("one worker ran them out of order: %v", order[:10])
			}
		})
	}
}

func TestPoolRefusesOnlyBeyondTheQueue(t *testing.T) {
	p := newPool(1)
	if !p.acquireN(queueMax) {
		t.Fatal("a full queue's worth refused")
	}
	if p.acquire() {
		t.Fatal("a place beyond queueMax was given")
	}
	p.release()
	if !p.acquire() {
		t.Fatal("a released place was not given again")
	}
	for range queueMax {
		p.release()
	}
	p.wait()
}
