// Command advisor-cron-oracle is the reference the differential tests compare
// advisor/cron.py against: robfig/cron v3.0.1 itself (the parser Kubernetes and
// Longhorn use), driven over JSON lines.
//
// Each input line is {"expr": "...", "start": "RFC3339", "zone": "Area/City", "n": 5}.
// Each output line is {"valid": bool, "error": "...", "next": [...]}: whether
// cron.ParseStandard accepts expr (a panic counts as a rejection, with the error
// "panic: ..."), and, when it does, the next n fire times found by iterating
// t = sched.Next(t) from start.In(zone), as RFC3339Nano in UTC. The zero time (no
// match within five years) is written "" and ends the iteration: the remaining
// items are "" too, so "next" always has n items. A line that cannot be read (bad
// JSON, start or zone) gets {"input_error": "..."} instead.
//
// robfig's Next can loop forever (e.g. "0 0 31 12 *" in Pacific/Apia, whose
// 30 December 2011 does not exist: time.Date maps it back to the 29th). When a
// Next call has not returned after hangAfter, the answer is {"valid": true,
// "hang": true, "next": [the times found before it], "error": "hang: ..."}; the
// oracle then exits with status 3 (the stuck goroutine cannot be stopped), and
// the caller starts it again on the lines after that one.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/robfig/cron/v3"
)

type request struct {
	Expr  string `json:"expr"`
	Start string `json:"start"`
	Zone  string `json:"zone"`
	N     int    `json:"n"`
}

type response struct {
	Valid      bool     `json:"valid"`
	Error      string   `json:"error"`
	Next       []string `json:"next"`
	Hang       bool     `json:"hang,omitempty"`
	InputError string   `json:"input_error,omitempty"`
}

const hangAfter = 2 * time.Second

// exitHung is the exit status after answering a line on which Next hung.
const exitHung = 3

// parse is cron.ParseStandard with a panic turned into an error.
func parse(expr string) (sched cron.Schedule, err error) {
	defer func() {
		if r := recover(); r != nil {
			sched, err = nil, fmt.Errorf("panic: %v", r)
		}
	}()
	return cron.ParseStandard(expr)
}

// series collects the fire times as they are found, so that a hang can report them.
type series struct {
	mu    sync.Mutex
	times []string
}

func (s *series) add(t string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.times = append(s.times, t)
}

func (s *series) get() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string{}, s.times...)
}

// fireTimes iterates Next n times from start; a panic in Next is reported as such,
// and a Next that does not return within hangAfter as a hang.
func fireTimes(sched cron.Schedule, start time.Time, n int) response {
	found := &series{}
	done := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- fmt.Errorf("panic in Next: %v", r)
			}
		}()
		t := start
		for i := 0; i < n; i++ {
			t = sched.Next(t)
			if t.IsZero() {
				break
			}
			found.add(t.UTC().Format(time.RFC3339Nano))
		}
		done <- nil
	}()
	select {
	case err := <-done:
		out := found.get()
		if err != nil {
			return response{Valid: true, Error: err.Error(), Next: out}
		}
		for len(out) < n {
			out = append(out, "")
		}
		return response{Valid: true, Next: out}
	case <-time.After(hangAfter):
		out := found.get()
		return response{Valid: true, Hang: true, Next: out,
			Error: fmt.Sprintf("hang: Next #%d did not return within %s", len(out)+1, hangAfter)}
	}
}

func answer(line []byte) response {
	var req request
	if err := json.Unmarshal(line, &req); err != nil {
		return response{InputError: "bad JSON: " + err.Error()}
	}
	loc, err := time.LoadLocation(req.Zone)
	if err != nil {
		return response{InputError: "bad zone: " + err.Error()}
	}
	start, err := time.Parse(time.RFC3339Nano, req.Start)
	if err != nil {
		return response{InputError: "bad start: " + err.Error()}
	}
	sched, err := parse(req.Expr)
	if err != nil {
		return response{Valid: false, Error: err.Error(), Next: []string{}}
	}
	return fireTimes(sched, start.In(loc), req.N)
}

func main() {
	in := bufio.NewReaderSize(os.Stdin, 1<<20)
	out := bufio.NewWriterSize(os.Stdout, 1<<20)
	defer out.Flush()
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	for {
		line, err := in.ReadBytes('\n')
		if len(line) > 0 {
			resp := answer(line)
			if encErr := enc.Encode(resp); encErr != nil {
				fmt.Fprintln(os.Stderr, "oracle:", encErr)
				os.Exit(1)
			}
			if resp.Hang {
				out.Flush()
				os.Exit(exitHung)
			}
		}
		if err == io.EOF {
			return
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "oracle:", err)
			os.Exit(1)
		}
	}
}
