package main

import (
	"errors"
	"flag"
	"fmt"
	"image/color"
	"math"
	"os"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

var (
	colourMet    = color.RGBA{R: 46, G: 160, B: 67, A: 255}
	colourMissed = color.RGBA{R: 207, G: 34, B: 46, A: 255}
)

// chartRow is one target on the chart.
type chartRow struct {
	name, label string
	score       float64 // result / target in the good direction: >= 1 met
	met         bool
}

// chartRows turns every evaluated target into a score, so that ratios
// where higher is better and ratios where lower is better read the same
// way: right of 1 is met, left of it missed. A target of 0 (no messages
// lost) has no finite score: met shows as exactly 1, missed at the left
// edge.
func chartRows(rep *report) []chartRow {
	var rows []chartRow
	for _, c := range rep.Comparisons {
		if c.Op == "" || c.Skipped != "" || c.Met == nil {
			continue
		}
		s := c.Score
		if s <= 0 || math.IsInf(s, 0) || math.IsNaN(s) {
			s = 1
			if !*c.Met {
				s = 0 // drawn at the left edge
			}
		}
		rows = append(rows, chartRow{
			name:  c.Name,
			label: fmt.Sprintf("%s (target %s, %s is better)", resultCell(c), targetCell(c), c.Better),
			score: s,
			met:   *c.Met,
		})
	}
	return rows
}

// drawChart plots every target of the run as a bar from the target (1)
// to the result's score, on a log axis: green bars end right of the
// target line (met), red ones left of it (missed). Each bar's label
// carries the raw result, the target and the direction.
func drawChart(rep *report, path string) error {
	rows := chartRows(rep)
	if len(rows) == 0 {
		return errors.New("no evaluated targets to plot")
	}
	lo, hi := 0.5, 2.0
	for _, r := range rows {
		if r.score > 0 {
			lo, hi = min(lo, r.score/1.3), max(hi, r.score*1.3)
		}
	}
	lo, hi = max(lo, 0.01), min(hi, 100)

	p := plot.New()
	date := rep.Date
	if len(date) >= 10 {
		date = date[:10]
	}
	p.Title.Text = fmt.Sprintf("aranya-quic targets, %s: %s, %s CPUs", date, rep.Machine["cpu_model"], rep.Machine["nproc"])
	p.Title.Padding = vg.Points(6)
	p.X.Label.Text = "score = result / target in the good direction (log scale): right of the dashed target line, green, is met; left, red, is missed"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = logTicks(lo, hi)
	p.X.Min, p.X.Max = lo, hi // the labels' glyph boxes make room for them on the right
	n := len(rows)
	names := make([]string, n)
	var labels plotter.XYLabels
	for i, r := range rows {
		y := float64(n - 1 - i) // the first row on top
		names[n-1-i] = r.name
		x := clamp(r.score, lo, hi)
		col := colourMissed
		if r.met {
			col = colourMet
		}
		bar, err := plotter.NewLine(plotter.XYs{{X: 1, Y: y}, {X: x, Y: y}})
		if err != nil {
			return fmt.Errorf("bar: %w", err)
		}
		bar.Color = col
		bar.Width = vg.Points(9)
		p.Add(bar)
		end, err := plotter.NewScatter(plotter.XYs{{X: x, Y: y}})
		if err != nil {
			return fmt.Errorf("bar end: %w", err)
		}
		end.GlyphStyle.Shape = draw.CircleGlyph{}
		end.GlyphStyle.Radius = vg.Points(4.5)
		end.GlyphStyle.Color = col
		p.Add(end)
		labels.XYs = append(labels.XYs, plotter.XY{X: max(x, 1) * 1.06, Y: y})
		labels.Labels = append(labels.Labels, r.label)
	}
	target, err := plotter.NewLine(plotter.XYs{{X: 1, Y: -0.6}, {X: 1, Y: float64(n) - 0.4}})
	if err != nil {
		return fmt.Errorf("target line: %w", err)
	}
	target.Color = color.Black
	target.Width = vg.Points(1.2)
	target.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	p.Add(target)
	l, err := plotter.NewLabels(labels)
	if err != nil {
		return fmt.Errorf("labels: %w", err)
	}
	for i := range l.TextStyle {
		l.TextStyle[i].XAlign = draw.XLeft
		l.TextStyle[i].YAlign = draw.YCenter
		l.TextStyle[i].Font.Size = vg.Points(8)
	}
	p.Add(l)
	grid := plotter.NewGrid()
	grid.Horizontal.Width = 0
	p.Add(grid)
	p.NominalY(names...)
	p.Y.Tick.Label.Font.Size = vg.Points(8.5)
	p.Y.Min, p.Y.Max = -0.6, float64(n)-0.4
	return p.Save(vg.Points(980), vg.Points(float64(90+22*n)), path)
}

func clamp(v, lo, hi float64) float64 { return max(lo, min(v, hi)) }

// logTicks labels 1, 2 and 5 of each decade between lo and hi.
func logTicks(lo, hi float64) plot.ConstantTicks {
	var ts []plot.Tick
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
		for _, m := range []float64{1, 2, 5} {
			v := m * math.Pow(10, e)
			if v < lo || v > hi {
				continue
			}
			ts = append(ts, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'g', -1, 64)})
		}
	}
	return ts
}

func chartMain(args []string) error {
	fs := flag.NewFlagSet("chart", flag.ExitOnError)
	in := fs.String("in", defaultReport, "report")
	out := fs.String("out", "bench/results/ratios.png", "PNG")
	fs.Parse(args)
	rep, err := loadReport(*in)
	if err != nil {
		return err
	}
	return drawChart(rep, *out)
}

func tableMain(args []string) error {
	fs := flag.NewFlagSet("table", flag.ExitOnError)
	in := fs.String("in", defaultReport, "report")
	fs.Parse(args)
	rep, err := loadReport(*in)
	if err != nil {
		return err
	}
	printTable(os.Stdout, rep)
	return nil
}
