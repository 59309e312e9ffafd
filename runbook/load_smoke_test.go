package runbook

import "testing"

func TestDefaultsLoad(t *testing.T) {
	cat, err := Defaults()
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"scenario-1", "scenario-2"} {
		if _, err := cat.Get(id); err != nil {
			t.Fatal(err)
		}
	}
}
