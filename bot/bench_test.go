package bot_test

import (
	"slices"
	"testing"
	"time"

	"github.com/drbot-dev/drbot/bot/slacktest"
	"github.com/drbot-dev/drbot/handlers"
)

// BenchmarkAck measures how long drbot takes to ack envelopes through the
// fake socket (from the envelope written to the ack read), the figure Slack
// holds to 3 seconds. It reports the median and the 99th percentile.
func BenchmarkAck(b *testing.B) {
	h := newHarness(b)
	ch := h.start()
	step := h.stepMessage(ch.ID, 1, "Stop the web app and workers", "awaiting approval")
	cases := []struct {
		name string
		send func() (slacktest.Ack, error)
	}{
		{"slash_help", func() (slacktest.Ack, error) { return h.slack.SlashCommand(h.ctx, lead, general, "help") }},
		{"slash_start_refused", func() (slacktest.Ack, error) {
			return h.slack.SlashCommand(h.ctx, lead, general, "start scenario-2 service=itt-mentor-services env=qa")
		}},
		{"slash_status_worker", func() (slacktest.Ack, error) { return h.slack.SlashCommand(h.ctx, lead, ch.ID, "status") }},
		{"button_click", func() (slacktest.Ack, error) {
			return h.slack.Click(h.ctx, outsider, step, string(handlers.ActApprove))
		}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			for b.Loop() {
				ack, err := c.send()
				if err != nil {
					b.Fatal(err)
				}
				lat = append(lat, ack.Latency)
			}
			slices.Sort(lat)
			b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
			b.ReportMetric(ms(lat[min(len(lat)-1, len(lat)*99/100)]), "p99-ms")
		})
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
