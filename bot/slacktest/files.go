package slacktest

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// Files upload v2, as slack-go v0.35's UploadFileContext calls it:
// files.getUploadURLExternal hands out an upload URL and a file id, the
// client POSTs the file there (multipart, field "file"), and
// files.completeUploadExternal shares it in a channel with an optional
// comment. The fake checks the declared length against what arrived and
// refuses to complete a file that was never uploaded.

// File is a file uploaded through files upload v2.
type File struct {
	ID, Name, Title string
	Length          int    // as declared to files.getUploadURLExternal
	Content         []byte // as uploaded
	Channel         string // where completeUploadExternal shared it
	TS              string // the ts of its share in Channel
	Comment         string // its initial_comment
	Completed       bool
}

func (s *Server) fileMethods() map[string]func(map[string]any) map[string]any {
	return map[string]func(map[string]any) map[string]any{
		"files.getUploadURLExternal":   s.getUploadURL,
		"files.completeUploadExternal": s.completeUpload,
	}
}

func (s *Server) getUploadURL(p map[string]any) map[string]any {
	name := str(p, "filename")
	n, err := strconv.Atoi(str(p, "length"))
	if name == "" || err != nil || n <= 0 {
		return slackError("invalid_arguments")
	}
	f := &File{ID: s.nextID("F"), Name: name, Length: n}
	s.files = append(s.files, f)
	return ok(map[string]any{"upload_url": s.srv.URL + "/upload/" + f.ID, "file_id": f.ID})
}

func (s *Server) file(id string) *File {
	for _, f := range s.files {
		if f.ID == id {
			return f
		}
	}
	return nil
}

// serveUpload takes a file's bytes at its upload URL.
func (s *Server) serveUpload(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimPrefix(r.URL.Path, "/upload/")
	part, _, err := r.FormFile("file")
	if err != nil {
		http.Error(w, "no file part: "+err.Error(), http.StatusBadRequest)
		return
	}
	body, err := io.ReadAll(part)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.file(id)
	if f == nil {
		http.Error(w, "unknown upload", http.StatusNotFound)
		return
	}
	if len(body) != f.Length {
		http.Error(w, "length differs from files.getUploadURLExternal's", http.StatusBadRequest)
		return
	}
	f.Content = body
	_, _ = w.Write([]byte("OK - " + strconv.Itoa(len(body))))
}

func (s *Server) completeUpload(p map[string]any) map[string]any {
	var files []struct {
		ID    string `json:"id"`
		Title string `json:"title"`
	}
	if err := json.Unmarshal([]byte(str(p, "files")), &files); err != nil || len(files) == 0 {
		return slackError("invalid_arguments")
	}
	ch := str(p, "channel_id")
	if ch != "" && !s.known(ch) {
		return slackError("channel_not_found")
	}
	var out []map[string]any
	for _, in := range files {
		f := s.file(in.ID)
		if f == nil || f.Content == nil {
			return slackError("file_not_found")
		}
		f.Title, f.Channel, f.Comment, f.Completed = in.Title, ch, str(p, "initial_comment"), true
		// Slack shows the shared file as a message of its own; the fake keeps
		// it as a File (Files, WaitFile), apart from the messages drbot posts,
		// and conversations.history lists it among them.
		if ch != "" {
			f.TS = s.nextTS()
		}
		out = append(out, map[string]any{"id": f.ID, "title": f.Title})
	}
	return ok(map[string]any{"files": out})
}

// Files returns the files uploaded, completed or not, in order.
func (s *Server) Files() []File {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]File, len(s.files))
	for i, f := range s.files {
		out[i] = *f
	}
	return out
}

// WaitFile waits for a completed upload whose name contains name.
func (s *Server) WaitFile(ctx context.Context, name string) (File, error) {
	var found File
	err := poll(ctx, "a file "+name, func() bool {
		for _, f := range s.Files() {
			if f.Completed && strings.Contains(f.Name, name) {
				found = f
				return true
			}
		}
		return false
	})
	return found, err
}
