package orderflow

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// RepeatedLogInterval is how often a LogLimiter writes a line that keeps
// repeating (a full disk fails every write, and a busy api retries many a
// second: one line per failure wrote 119 MB of log in 20 s).
const RepeatedLogInterval = 10 * time.Second

// LogLimiter writes a log line that keeps repeating at most once per
// interval for each kind: the first line of a series is written at once;
// those that follow within the interval are counted, and when the
// interval ends the last of them is written with "repeated" = their count.
// A kind is a fixed name chosen by the caller (one per call site and
// cause), never a value from a request. Safe for concurrent use.
type LogLimiter struct {
	log      *slog.Logger
	interval time.Duration

	mu     sync.Mutex
	series map[string]*logSeries
}

// logSeries is one kind's state: quiet until the end of its interval, and
// the lines held back meanwhile.
type logSeries struct {
	quietUntil time.Time
	held       int // lines held back since the last one written
	level      slog.Level
	msg        string
	args       []any // of the last line held back
	timer      *time.Timer
}

// NewLogLimiter returns a LogLimiter writing to log.
func NewLogLimiter(log *slog.Logger, interval time.Duration) *LogLimiter {
	return &LogLimiter{log: log, interval: interval, series: map[string]*logSeries{}}
}

// Log writes msg with args at level, or counts it if a line of the same
// kind was written less than an interval ago.
func (l *LogLimiter) Log(ctx context.Context, level slog.Level, kind, msg string, args ...any) {
	now := time.Now()
	l.mu.Lock()
	s := l.series[kind]
	if s == nil {
		s = &logSeries{}
		l.series[kind] = s
	}
	if s.held == 0 && !now.Before(s.quietUntil) {
		s.quietUntil = now.Add(l.interval)
		l.mu.Unlock()
		l.log.Log(ctx, level, msg, args...)
		return
	}
	s.held++
	s.level, s.msg, s.args = level, msg, args
	if s.timer == nil {
		s.timer = time.AfterFunc(s.quietUntil.Sub(now), func() { l.flush(kind) })
	}
	l.mu.Unlock()
}

// Flush writes the lines held back now, without waiting for the end of
// their intervals (at shutdown, so that no count is lost).
func (l *LogLimiter) Flush() {
	l.mu.Lock()
	kinds := make([]string, 0, len(l.series))
	for kind, s := range l.series {
		if s.held > 0 {
			kinds = append(kinds, kind)
		}
	}
	l.mu.Unlock()
	for _, kind := range kinds {
		l.flush(kind)
	}
}

// flush writes the last line held back of kind with the count, and starts
// a new quiet interval.
func (l *LogLimiter) flush(kind string) {
	l.mu.Lock()
	s := l.series[kind]
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	held, level, msg, args := s.held, s.level, s.msg, s.args
	if held == 0 {
		l.mu.Unlock()
		return
	}
	s.held, s.args = 0, nil
	s.quietUntil = time.Now().Add(l.interval)
	l.mu.Unlock()
	l.log.Log(context.Background(), level, msg, append(args[:len(args):len(args)], "repeated", held)...)
}
