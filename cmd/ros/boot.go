package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/rosos/ros/init/bootlog"
	"github.com/rosos/ros/internal/paths"
)

func bootCmd() *cobra.Command {
	c := &cobra.Command{Use: "boot", Short: "What the last boot did"}
	var out *output
	a := &cobra.Command{
		Use:   "analyze",
		Short: "Each boot stage and each service (created, started, healthy), slowest first",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			evs, err := readTimeline(paths.Timeline)
			if err != nil {
				return err
			}
			rows := Analyze(evs)
			if out.json() {
				return printJSON(os.Stdout, rows)
			}
			w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "TOOK\tWHAT\tBEGAN\tSTARTED\tHEALTHY")
			for _, r := range rows {
				fmt.Fprintf(w, "%7.3fs\t%s\t%s\t%s\t%s\n", r.Took, r.What, at(r.Began), at(r.Started), at(r.Healthy))
			}
			return w.Flush()
		},
	}
	out = addOutput(a, "table", "json")
	c.AddCommand(a)
	return c
}

func at(v float64) string {
	if v < 0 {
		return "-"
	}
	return fmt.Sprintf("%.3fs", v)
}

// Row is one stage or service of the boot, times in seconds since the
// kernel started (-1: did not happen).
type Row struct {
	What    string  `json:"what"`
	Took    float64 `json:"took"`
	Began   float64 `json:"began"`
	Started float64 `json:"started"`
	Healthy float64 `json:"healthy"`
}

func readTimeline(p string) ([]bootlog.Event, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("boot timeline: %w", err)
	}
	defer f.Close()
	var out []bootlog.Event
	s := bufio.NewScanner(f)
	for s.Scan() {
		var e bootlog.Event
		if err := json.Unmarshal(s.Bytes(), &e); err == nil {
			out = append(out, e)
		}
	}
	return out, s.Err()
}

// Analyze turns the timeline into rows, slowest first: a stage took until
// the next stage began; a service took from when the manager began it
// until it was healthy (or started, without a healthcheck).
func Analyze(evs []bootlog.Event) []Row {
	var rows []Row
	var stages []bootlog.Event
	svc := map[string]*Row{}
	var order []string
	for _, e := range evs {
		if e.Phase != "service" {
			stages = append(stages, e)
			continue
		}
		r := svc[e.Name]
		if r == nil {
			r = &Row{What: "service " + e.Name, Began: -1, Started: -1, Healthy: -1}
			svc[e.Name] = r
			order = append(order, e.Name)
		}
		switch e.Note {
		case "starting":
			if r.Began < 0 {
				r.Began = e.At
			}
		case "started", "created":
			if r.Started < 0 {
				r.Started = e.At
			}
		case "healthy":
			if r.Healthy < 0 {
				r.Healthy = e.At
			}
		}
	}
	sort.SliceStable(stages, func(i, j int) bool { return stages[i].At < stages[j].At })
	for i, s := range stages {
		r := Row{What: s.Phase + ": " + s.Name, Began: s.At, Started: -1, Healthy: -1}
		if i+1 < len(stages) {
			r.Took = stages[i+1].At - s.At
		}
		rows = append(rows, r)
	}
	for _, n := range order {
		r := *svc[n]
		end := r.Healthy
		if end < 0 {
			end = r.Started
		}
		if r.Began >= 0 && end >= 0 {
			r.Took = end - r.Began
		}
		rows = append(rows, r)
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].Took > rows[j].Took })
	return rows
}
