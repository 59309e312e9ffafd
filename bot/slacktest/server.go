// Package slacktest is a fake Slack for tests: one httptest server plays the
// Web API methods drbot calls and a loopback socket-mode websocket, so the
// real slack-go client runs against it unchanged. Point the client at it
// with slack.OptionAPIURL(srv.URL()).
//
// It pushes envelopes the way Slack does (slash_commands, interactive
// block_actions and view_submission), records every ack with its payload
// and latency, and keeps channels, messages (with every chat.update),
// thread replies, ephemeral replies, pins and views for assertions.
package slacktest

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Identities the fake answers with.
const (
	TeamID    = "T0DRTEST1"
	TeamURL   = "https://drbot-test.slack.com/"
	BotUserID = "U0DRBOT01"
	BotID     = "B0DRBOT01"
	AppID     = "A0DRBOT01"
)

// Message is a message as the fake holds it: the latest text and blocks,
// and how many times chat.update changed it.
type Message struct {
	Channel  string
	TS       string
	ThreadTS string // set on thread replies
	Text     string
	Blocks   json.RawMessage
	Updates  int
	// History holds the blocks of every version, oldest first.
	History []json.RawMessage
	// Metadata is the message metadata it was posted with (event_type and
	// event_payload), or nil.
	Metadata json.RawMessage

	file *File // a shared file, as conversations.history shows it
}

// Ephemeral is a reply only one user sees: chat.postEphemeral or a post to a
// command's response_url.
type Ephemeral struct {
	Channel, User, Text string
	Via                 string // "chat.postEphemeral" or "response_url"
}

// Channel is a conversation.
type Channel struct {
	ID, Name, Topic, Purpose string
	Members                  []string
	Created                  bool // by conversations.create (not seeded)
	// NotMember and Private are what conversations.info reports of the
	// bot's membership and the channel (preflight.go seeds them).
	NotMember, Private bool
}

// View is a modal opened or updated.
type View struct {
	ID, Hash, TriggerID string
	Method              string // views.open or views.update
	Body                map[string]any
}

// Ack is an envelope's acknowledgement from the app.
type Ack struct {
	EnvelopeID string
	Type       string // the envelope's type
	Payload    json.RawMessage
	Latency    time.Duration // from sending the envelope to reading the ack
}

// Call is one Web API request.
type Call struct {
	Method string
	Params map[string]any
}

// Server is the fake Slack.
type Server struct {
	srv          *httptest.Server
	pingInterval time.Duration

	mu         sync.Mutex
	seq        int64
	tsBase     int64
	channels   map[string]*Channel
	messages   []*Message
	ephemerals []Ephemeral
	pins       map[string][]string
	views      []View
	files      []*File // files upload v2 (files.go)
	groups     map[string][]string
	calls      []Call
	failures   map[string][]string        // method → error codes to answer, in turn
	rateLimits map[string][]time.Duration // method → Retry-After to answer, in turn
	faults     Faults
	rnd        *rand.Rand
	injected   map[string]int // fault kind → count
	sent       map[string]*envelope
	acks       []Ack
	waiting    map[string]*pending
	conn       *wsConn
	connected  chan struct{} // closed at the first connection
	conns      int
	spread     bool      // Spread: several connections at once
	live       []*wsConn // Spread: the open connections
	turn       int       // Spread: round-robin position
	scopes     []string  // the bot token's scopes, sent in X-OAuth-Scopes (preflight.go)
}

type pending struct {
	typ  string
	sent time.Time
	done chan Ack
}

type wsConn struct {
	c  *websocket.Conn
	mu sync.Mutex // serializes writes
}

// Option configures a Server.
type Option func(*Server)

// WithPingInterval sets how often the socket pings the client (default
// 10s; slack-go reconnects after 30s without a ping).
func WithPingInterval(d time.Duration) Option { return func(s *Server) { s.pingInterval = d } }

// New starts a fake Slack; Close stops it.
func New(opts ...Option) *Server {
	s := &Server{
		pingInterval: 10 * time.Second,
		tsBase:       time.Now().Unix(),
		channels:     map[string]*Channel{},
		pins:         map[string][]string{},
		groups:       map[string][]string{},
		failures:     map[string][]string{},
		rateLimits:   map[string][]time.Duration{},
		waiting:      map[string]*pending{},
		injected:     map[string]int{},
		sent:         map[string]*envelope{},
		connected:    make(chan struct{}),
	}
	for _, o := range opts {
		o(s)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", s.serveSocket)
	mux.HandleFunc("/response/", s.serveResponseURL)
	mux.HandleFunc("/upload/", s.serveUpload)
	mux.HandleFunc("/", s.serveAPI)
	s.srv = httptest.NewServer(mux)
	return s
}

// URL is the Web API base URL, ending in "/", for slack.OptionAPIURL and
// SLACK_API_URL.
func (s *Server) URL() string { return s.srv.URL + "/" }

// Close stops the server and drops the socket.
func (s *Server) Close() {
	s.mu.Lock()
	conns := append([]*wsConn{s.conn}, s.live...)
	s.mu.Unlock()
	for _, c := range conns {
		if c != nil {
			_ = c.c.Close()
		}
	}
	s.srv.Close()
}

// AddChannel seeds a channel that exists before the test (e.g. the
// stakeholder channel).
func (s *Server) AddChannel(id, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.channels[id] = &Channel{ID: id, Name: name}
}

// SetGroup sets a user group's members.
func (s *Server) SetGroup(id string, users ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.groups[id] = users
}

// Fail makes the next calls of method answer {"ok":false,"error":code}, once
// per code given.
func (s *Server) Fail(method string, codes ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures[method] = append(s.failures[method], codes...)
}

// RateLimit makes the next call of method answer HTTP 429 with Retry-After.
func (s *Server) RateLimit(method string, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rateLimits[method] = append(s.rateLimits[method], retryAfter)
}

// Faults are random failures of the Web API, seeded so a failing run can be
// replayed.
type Faults struct {
	Seed int64
	// RateLimited is the share of calls answered HTTP 429 with RetryAfter
	// (whole seconds, as Slack sends it; 0 sends "Retry-After: 0").
	RateLimited float64
	RetryAfter  time.Duration
	// ServerErrors is the share of calls answered HTTP 503.
	ServerErrors float64
	// Lost is the share of calls that take effect but whose answer is lost:
	// Slack acts, then the client gets HTTP 503.
	Lost float64
	// Methods are the methods the faults apply to; empty means Slack's
	// writes drbot queues in its outbox: chat.postMessage and chat.update.
	Methods []string
}

// Fault kinds counted by Injected.
const (
	FaultRateLimited = "429"
	FaultServerError = "5xx"
	FaultLost        = "handled, answer lost"
	FaultDrop        = "socket drop"
)

// SetFaults starts (or, with the zero Faults, stops) random faults.
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(f.Methods) == 0 {
		f.Methods = []string{"chat.postMessage", "chat.update"}
	}
	s.faults = f
	s.rnd = rand.New(rand.NewPCG(uint64(f.Seed), 0x51ac))
}

// Injected counts the faults injected so far by kind (FaultRateLimited,
// FaultServerError, FaultDrop).
func (s *Server) Injected() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for k, v := range s.injected {
		out[k] = v
	}
	return out
}

// randomFault answers a call with a random fault, if one is drawn; s.mu is
// held. lost means the call is to be handled and its answer replaced by a
// 503.
func (s *Server) randomFault(w http.ResponseWriter, method string) (answered, lost bool) {
	f := s.faults
	if s.rnd == nil || !slices.Contains(f.Methods, method) {
		return false, false
	}
	switch x := s.rnd.Float64(); {
	case x < f.RateLimited:
		s.injected[FaultRateLimited]++
		w.Header().Set("Retry-After", strconv.Itoa(int(f.RetryAfter.Seconds())))
		w.WriteHeader(http.StatusTooManyRequests)
		return true, false
	case x < f.RateLimited+f.ServerErrors:
		s.injected[FaultServerError]++
		unavailable(w)
		return true, false
	case x < f.RateLimited+f.ServerErrors+f.Lost:
		s.injected[FaultLost]++
		return false, true
	}
	return false, false
}

func unavailable(w http.ResponseWriter) {
	http.Error(w, "<html>503 Service Unavailable</html>", http.StatusServiceUnavailable)
}

// nextTS returns a message ts, unique and increasing even within a second.
func (s *Server) nextTS() string {
	s.seq++
	return fmt.Sprintf("%d.%06d", s.tsBase+s.seq/1_000_000, s.seq%1_000_000)
}

func (s *Server) nextID(prefix string) string {
	s.seq++
	return prefix + strings.ToUpper(strconv.FormatInt(1_000_000+s.seq, 36))
}

// params reads a Web API request: form-encoded or JSON.
func params(r *http.Request) (map[string]any, error) {
	out := map[string]any{}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		if len(body) > 0 {
			if err := json.Unmarshal(body, &out); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	if err := r.ParseForm(); err != nil {
		return nil, err
	}
	for k, v := range r.Form {
		out[k] = v[0]
	}
	return out, nil
}

func str(p map[string]any, key string) string {
	v, _ := p[key].(string)
	return v
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func slackError(code string) map[string]any { return map[string]any{"ok": false, "error": code} }

func ok(fields map[string]any) map[string]any {
	fields["ok"] = true
	return fields
}

func bearer(r *http.Request, p map[string]any) string {
	if t, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); found {
		return t
	}
	return str(p, "token")
}

// serveAPI answers Web API methods.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	method := strings.TrimPrefix(r.URL.Path, "/")
	p, err := params(r)
	if err != nil {
		writeJSON(w, slackError("invalid_form_data"))
		return
	}
	token := bearer(r, p)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, Call{Method: method, Params: p})
	w.Header().Set("X-OAuth-Scopes", s.scopeHeader())
	wantPrefix := "xoxb-"
	if method == "apps.connections.open" {
		wantPrefix = "xapp-"
	}
	if !strings.HasPrefix(token, wantPrefix) {
		writeJSON(w, slackError("invalid_auth"))
		return
	}
	if ra := s.rateLimits[method]; len(ra) > 0 {
		s.rateLimits[method] = ra[1:]
		w.Header().Set("Retry-After", strconv.Itoa(int(ra[0].Seconds())))
		w.WriteHeader(http.StatusTooManyRequests)
		return
	}
	answered, lost := s.randomFault(w, method)
	if answered {
		return
	}
	if codes := s.failures[method]; len(codes) > 0 {
		s.failures[method] = codes[1:]
		resp := slackError(codes[0])
		if codes[0] == "missing_scope" {
			resp["needed"] = neededScope[method]
			resp["provided"] = "chat:write,commands"
		}
		writeJSON(w, resp)
		return
	}
	h, found := s.methods()[method]
	if !found {
		writeJSON(w, slackError("unknown_method"))
		return
	}
	answer := h(p)
	if lost {
		unavailable(w)
		return
	}
	writeJSON(w, answer)
}

// neededScope is what a missing_scope answer names, as Slack does.
var neededScope = map[string]string{
	"conversations.create": "channels:manage", "pins.add": "pins:write", "usergroups.users.list": "usergroups:read",
	"chat.postMessage": "chat:write", "conversations.history": "channels:history", "conversations.replies": "channels:history",
}

func (s *Server) methods() map[string]func(map[string]any) map[string]any {
	m := s.fileMethods()
	for k, v := range map[string]func(map[string]any) map[string]any{
		"auth.test": func(map[string]any) map[string]any {
			return ok(map[string]any{"url": TeamURL, "team": "drbot-test", "user": "drbot", "team_id": TeamID, "user_id": BotUserID, "bot_id": BotID})
		},
		"apps.connections.open": func(map[string]any) map[string]any {
			return ok(map[string]any{"url": "ws" + strings.TrimPrefix(s.srv.URL, "http") + "/ws"})
		},
		"conversations.create":     s.createChannel,
		"conversations.setTopic":   s.setChannelField(func(c *Channel, v string) { c.Topic = v }, "topic"),
		"conversations.setPurpose": s.setChannelField(func(c *Channel, v string) { c.Purpose = v }, "purpose"),
		"conversations.invite":     s.invite,
		"conversations.info": func(p map[string]any) map[string]any {
			c, found := s.channels[str(p, "channel")]
			if !found {
				return slackError("channel_not_found")
			}
			return ok(map[string]any{"channel": channelJSON(c)})
		},
		"conversations.history": s.history,
		"conversations.replies": s.replies,
		"chat.postMessage":      s.postMessage,
		"chat.update":           s.updateMessage,
		"chat.postEphemeral":    s.postEphemeral,
		"pins.add":              s.addPin,
		"views.open":            s.view("views.open"),
		"views.update":          s.view("views.update"),
		"usergroups.users.list": s.groupMembers,
	} {
		m[k] = v
	}
	return m
}

var channelNamePattern = regexp.MustCompile(`^[a-z0-9_-]{1,80}$`)

func channelJSON(c *Channel) map[string]any {
	return map[string]any{"id": c.ID, "name": c.Name, "is_channel": true, "is_member": !c.NotMember, "is_private": c.Private,
		"topic": map[string]any{"value": c.Topic}, "purpose": map[string]any{"value": c.Purpose}}
}

func (s *Server) createChannel(p map[string]any) map[string]any {
	name := str(p, "name")
	if !channelNamePattern.MatchString(name) {
		return slackError("invalid_name_specials")
	}
	for _, c := range s.channels {
		if c.Name == name {
			return slackError("name_taken")
		}
	}
	c := &Channel{ID: s.nextID("C"), Name: name, Members: []string{BotUserID}, Created: true}
	s.channels[c.ID] = c
	return ok(map[string]any{"channel": channelJSON(c)})
}

func (s *Server) setChannelField(set func(*Channel, string), field string) func(map[string]any) map[string]any {
	return func(p map[string]any) map[string]any {
		c, found := s.channels[str(p, "channel")]
		if !found {
			return slackError("channel_not_found")
		}
		v := str(p, field)
		if len([]rune(v)) > 250 {
			return slackError("too_long")
		}
		set(c, v)
		return ok(map[string]any{"channel": channelJSON(c)})
	}
}

func (s *Server) invite(p map[string]any) map[string]any {
	c, found := s.channels[str(p, "channel")]
	if !found {
		return slackError("channel_not_found")
	}
	for _, u := range strings.Split(str(p, "users"), ",") {
		if u == BotUserID {
			return slackError("cant_invite_self")
		}
		if u != "" && !slices.Contains(c.Members, u) {
			c.Members = append(c.Members, u)
		}
	}
	return ok(map[string]any{"channel": channelJSON(c)})
}

// known reports whether a message can go to channel: a channel, or a user
// (a direct message).
func (s *Server) known(channel string) bool {
	_, found := s.channels[channel]
	return found || strings.HasPrefix(channel, "U")
}

func blocksOf(p map[string]any) (json.RawMessage, error) {
	switch b := p["blocks"].(type) {
	case nil:
		return nil, nil
	case string:
		if b == "" {
			return nil, nil
		}
		var v []any
		if err := json.Unmarshal([]byte(b), &v); err != nil {
			return nil, err
		}
		return json.RawMessage(b), nil
	default:
		raw, err := json.Marshal(b)
		return raw, err
	}
}

func (s *Server) postMessage(p map[string]any) map[string]any {
	ch := str(p, "channel")
	if !s.known(ch) {
		return slackError("channel_not_found")
	}
	blocks, err := blocksOf(p)
	if err != nil {
		return slackError("invalid_blocks")
	}
	if str(p, "text") == "" && blocks == nil {
		return slackError("no_text")
	}
	thread := str(p, "thread_ts")
	if thread != "" && s.find(ch, thread) == nil {
		return slackError("thread_not_found")
	}
	meta, err := metadataOf(p)
	if err != nil {
		return slackError("invalid_metadata_format")
	}
	m := &Message{Channel: ch, TS: s.nextTS(), ThreadTS: thread, Text: str(p, "text"), Blocks: blocks, History: []json.RawMessage{blocks}, Metadata: meta}
	s.messages = append(s.messages, m)
	return ok(map[string]any{"channel": ch, "ts": m.TS, "message": map[string]any{"type": "message", "ts": m.TS, "text": m.Text, "thread_ts": thread}})
}

func (s *Server) find(channel, ts string) *Message {
	for _, m := range s.messages {
		if m.Channel == channel && m.TS == ts {
			return m
		}
	}
	return nil
}

func (s *Server) updateMessage(p map[string]any) map[string]any {
	m := s.find(str(p, "channel"), str(p, "ts"))
	if m == nil {
		return slackError("message_not_found")
	}
	blocks, err := blocksOf(p)
	if err != nil {
		return slackError("invalid_blocks")
	}
	m.Text, m.Blocks = str(p, "text"), blocks
	m.Updates++
	m.History = append(m.History, blocks)
	return ok(map[string]any{"channel": m.Channel, "ts": m.TS, "text": m.Text})
}

func (s *Server) postEphemeral(p map[string]any) map[string]any {
	ch := str(p, "channel")
	c, found := s.channels[ch]
	if !found {
		return slackError("channel_not_found")
	}
	if !slices.Contains(c.Members, BotUserID) {
		return slackError("not_in_channel")
	}
	s.ephemerals = append(s.ephemerals, Ephemeral{Channel: ch, User: str(p, "user"), Text: str(p, "text"), Via: "chat.postEphemeral"})
	return ok(map[string]any{"message_ts": s.nextTS()})
}

func (s *Server) addPin(p map[string]any) map[string]any {
	ch, ts := str(p, "channel"), str(p, "timestamp")
	if s.find(ch, ts) == nil {
		return slackError("message_not_found")
	}
	if slices.Contains(s.pins[ch], ts) {
		return slackError("already_pinned")
	}
	s.pins[ch] = append(s.pins[ch], ts)
	return ok(map[string]any{})
}

func (s *Server) view(method string) func(map[string]any) map[string]any {
	return func(p map[string]any) map[string]any {
		body, _ := p["view"].(map[string]any)
		if body == nil {
			return slackError("invalid_arguments")
		}
		v := View{ID: str(p, "view_id"), TriggerID: str(p, "trigger_id"), Method: method, Body: body}
		if method == "views.open" {
			if v.TriggerID == "" {
				return slackError("invalid_trigger_id")
			}
			v.ID = s.nextID("V")
		} else if !slices.ContainsFunc(s.views, func(o View) bool { return o.ID == v.ID }) {
			return slackError("not_found")
		}
		v.Hash = s.nextID("h")
		s.views = append(s.views, v)
		out := map[string]any{"id": v.ID, "hash": v.Hash}
		for k, val := range body {
			out[k] = val
		}
		return ok(map[string]any{"view": out})
	}
}

func (s *Server) groupMembers(p map[string]any) map[string]any {
	users, found := s.groups[str(p, "usergroup")]
	if !found {
		return slackError("no_such_subteam")
	}
	return ok(map[string]any{"users": users})
}

// serveResponseURL records replies posted to a command's response_url.
func (s *Server) serveResponseURL(w http.ResponseWriter, r *http.Request) {
	var msg struct {
		Text         string `json:"text"`
		ResponseType string `json:"response_type"`
	}
	if err := json.NewDecoder(r.Body).Decode(&msg); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	q, _ := url.ParseQuery(r.URL.RawQuery)
	s.mu.Lock()
	s.ephemerals = append(s.ephemerals, Ephemeral{Channel: q.Get("channel"), User: q.Get("user"), Text: msg.Text, Via: "response_url"})
	s.mu.Unlock()
	_, _ = w.Write([]byte("ok"))
}
