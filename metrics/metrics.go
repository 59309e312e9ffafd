// Package metrics keeps drbot's Prometheus metrics: what the Slack loop
// sees (bot.Observer), how steps end and adapters answer
// (runbook.StepObserver), and, read from the store at each scrape, the
// outbox and the open runs. cmd wires it; nothing else imports Prometheus.
package metrics

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/drbot-dev/drbot/bot"
	"github.com/drbot-dev/drbot/runbook"
)

// Stats is what the store tells at scrape time.
type Stats struct {
	OutboxPending int       // undelivered messages
	OldestPending time.Time // enqueue time of the oldest undelivered one; zero if none
	OpenRuns      int       // active runs
}

// StatsFunc reads Stats, e.g. from the store.
type StatsFunc func(ctx context.Context) (Stats, error)

// statsTimeout bounds the store read of one scrape: Prometheus' default
// scrape timeout is 10 s, and a slow store must show as a scrape error, not
// a hung scrape.
const statsTimeout = 5 * time.Second

// Metrics is drbot's registry and its series. It implements bot.Observer
// and runbook.StepObserver.
type Metrics struct {
	reg *prometheus.Registry

	envelopes      *prometheus.CounterVec
	ack            *prometheus.HistogramVec
	clicksRefused  *prometheus.CounterVec
	connected      prometheus.Gauge
	steps          *prometheus.CounterVec
	stepDuration   *prometheus.HistogramVec
	adapterLatency *prometheus.HistogramVec
	adapterErrors  *prometheus.CounterVec
}

var (
	_ bot.Observer         = (*Metrics)(nil)
	_ runbook.StepObserver = (*Metrics)(nil)
	_ prometheus.Collector = storeCollector{}
)

// New returns the metrics, registered with Go and process collectors, and
// with the store's figures read through stats at each scrape (nil: none).
func New(stats StatsFunc) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		envelopes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "drbot_slack_envelopes_total",
			Help: "Socket-mode envelopes received, by type (slash_commands, interactive, events_api, ...).",
		}, []string{"type"}),
		// Slack wants an ack within 3 s (api.slack.com/apis/socket-mode):
		// the buckets resolve the milliseconds drbot should take and the
		// seconds it must never reach.
		ack: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "drbot_slack_ack_seconds",
			Help:    "Time from receiving an envelope to acking it, by envelope type.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 3},
		}, []string{"type"}),
		clicksRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "drbot_clicks_refused_total",
			Help: "Button clicks not acted on, by reason (redelivery, queue_full, unknown_button, refused).",
		}, []string{"reason"}),
		connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "drbot_slack_connected",
			Help: "1 while the socket-mode connection to Slack is up, else 0.",
		}),
		steps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "drbot_steps_total",
			Help: "Steps that ended, by action kind and outcome (done, failed, skipped).",
		}, []string{"kind", "outcome"}),
		// Steps range from a second (a scale) to hours (a followed restore
		// workflow; the engine's default step timeout is 2 h).
		stepDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "drbot_step_duration_seconds",
			Help:    "Time from a step's claim to its end, by action kind.",
			Buckets: []float64{1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200},
		}, []string{"kind"}),
		adapterLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "drbot_adapter_call_seconds",
			Help:    "Duration of one adapter call (an action run, retries counted apart), by adapter family (github, kubernetes, azure, http, slack, manual).",
			Buckets: []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600},
		}, []string{"adapter"}),
		adapterErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "drbot_adapter_errors_total",
			Help: "Adapter calls that returned an error, by adapter family and whether it was retryable.",
		}, []string{"adapter", "retryable"}),
	}
	m.reg.MustRegister(m.envelopes, m.ack, m.clicksRefused, m.connected, m.steps, m.stepDuration,
		m.adapterLatency, m.adapterErrors,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if stats != nil {
		m.reg.MustRegister(storeCollector{stats: stats})
	}
	// Series an alert reads exist from the start at 0, so that rate() and
	// increase() see the first error instead of a series appearing.
	for _, family := range adapterFamilies {
		for _, retryable := range []string{"false", "true"} {
			m.adapterErrors.WithLabelValues(family, retryable)
		}
	}
	for _, reason := range []string{bot.RefusedRedelivery, bot.RefusedQueueFull, bot.RefusedUnknownButton, bot.RefusedByEngine} {
		m.clicksRefused.WithLabelValues(reason)
	}
	return m
}

// adapterFamilies are the families of drbot's action kinds (runbook.Family).
var adapterFamilies = []string{"github", "kubernetes", "azure", "http", "slack"}

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg, ErrorHandling: promhttp.ContinueOnError})
}

// Registry is the registry, for tests and extra collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Envelope implements bot.Observer.
func (m *Metrics) Envelope(typ string) { m.envelopes.WithLabelValues(typ).Inc() }

// Acked implements bot.Observer.
func (m *Metrics) Acked(typ string, d time.Duration) {
	m.ack.WithLabelValues(typ).Observe(d.Seconds())
}

// ClickRefused implements bot.Observer.
func (m *Metrics) ClickRefused(reason string) { m.clicksRefused.WithLabelValues(reason).Inc() }

// Connected implements bot.Observer.
func (m *Metrics) Connected(up bool) {
	if up {
		m.connected.Set(1)
	} else {
		m.connected.Set(0)
	}
}

// StepEnded implements runbook.StepObserver.
func (m *Metrics) StepEnded(kind string, outcome runbook.State, d time.Duration) {
	m.steps.WithLabelValues(kind, string(outcome)).Inc()
	if outcome != runbook.Skipped {
		m.stepDuration.WithLabelValues(kind).Observe(d.Seconds())
	}
}

// ActionCalled implements runbook.StepObserver.
func (m *Metrics) ActionCalled(kind string, d time.Duration, err error) {
	family := runbook.Family(kind)
	m.adapterLatency.WithLabelValues(family).Observe(d.Seconds())
	if err != nil {
		retryable := "false"
		if runbook.IsRetryable(err) {
			retryable = "true"
		}
		m.adapterErrors.WithLabelValues(family, retryable).Inc()
	}
}

// storeCollector reads the outbox and open runs from the store at each
// scrape, so every replica reports the shared figures as they are now.
type storeCollector struct{ stats StatsFunc }

var (
	outboxPendingDesc = prometheus.NewDesc("drbot_outbox_pending_messages",
		"Slack messages in the outbox not delivered yet.", nil, nil)
	outboxAgeDesc = prometheus.NewDesc("drbot_outbox_oldest_pending_age_seconds",
		"Age of the oldest undelivered outbox message (0 when none).", nil, nil)
	openRunsDesc = prometheus.NewDesc("drbot_runs_open",
		"Runs that are active (started, not done or aborted).", nil, nil)
	storeUpDesc = prometheus.NewDesc("drbot_store_up",
		"1 if the last scrape could read the store, else 0.", nil, nil)
)

// Describe implements prometheus.Collector.
func (c storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- outboxPendingDesc
	ch <- outboxAgeDesc
	ch <- openRunsDesc
	ch <- storeUpDesc
}

// Collect implements prometheus.Collector.
func (c storeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), statsTimeout)
	defer cancel()
	s, err := c.stats(ctx)
	if err != nil {
		// The store's own series are left out, not the scrape: everything
		// else still reaches Prometheus, and drbot_store_up says why.
		ch <- prometheus.MustNewConstMetric(storeUpDesc, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(storeUpDesc, prometheus.GaugeValue, 1)
	ch <- prometheus.MustNewConstMetric(outboxPendingDesc, prometheus.GaugeValue, float64(s.OutboxPending))
	age := 0.0
	if !s.OldestPending.IsZero() {
		age = max(time.Since(s.OldestPending).Seconds(), 0)
	}
	ch <- prometheus.MustNewConstMetric(outboxAgeDesc, prometheus.GaugeValue, age)
	ch <- prometheus.MustNewConstMetric(openRunsDesc, prometheus.GaugeValue, float64(s.OpenRuns))
}
