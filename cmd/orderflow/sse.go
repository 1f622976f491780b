package main

import (
	"bufio"
	"io"
	"strconv"
	"strings"
	"time"
)

// sseEvent is one server-sent event (the WHATWG HTML "event stream"
// format): id persists from earlier events when an event sets none.
type sseEvent struct {
	ID    string
	Event string // "message" when the stream names none
	Data  string
	Retry time.Duration // the stream's reconnection time, if it set one
}

// readSSE parses the event stream r and calls fn for each event, until r
// ends (nil; an event cut off by the end is dropped, as the format
// says), r fails (its error) or fn returns false (nil). Comment lines
// (": heartbeat") are skipped.
func readSSE(r io.Reader, lastID string, fn func(sseEvent) bool) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	ev := sseEvent{ID: lastID}
	var data []string
	hasData := false
	for sc.Scan() {
		line := strings.TrimSuffix(sc.Text(), "\r")
		if line == "" {
			if hasData {
				ev.Data = strings.Join(data, "\n")
				if ev.Event == "" {
					ev.Event = "message"
				}
				if !fn(ev) {
					return nil
				}
			}
			ev = sseEvent{ID: ev.ID, Retry: ev.Retry}
			data, hasData = nil, false
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "": // a comment
		case "event":
			ev.Event = value
		case "data":
			data, hasData = append(data, value), true
		case "id":
			if !strings.ContainsRune(value, 0) {
				ev.ID = value
			}
		case "retry":
			if ms, err := strconv.Atoi(value); err == nil && ms >= 0 {
				ev.Retry = time.Duration(ms) * time.Millisecond
			}
		}
	}
	return sc.Err()
}
