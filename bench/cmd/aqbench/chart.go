package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"image/color"
	"os"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// drawChart plots every library/baseline ratio of the run: a bar per
// comparison, green where the target is met, red where missed,
// grey where the ratio is reported without a target, with the target
// marked on the bar.
func drawChart(rep *report, path string) error {
	var cs []*comparison
	for _, c := range rep.Comparisons {
		if c.Unit == "x" && c.Skipped == "" && c.Ratio > 0 {
			cs = append(cs, c)
		}
	}
	if len(cs) == 0 {
		return fmt.Errorf("no ratios to plot")
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("aranya-quic (C API) / baseline, same run; %s, %s CPUs (%s)",
		rep.Machine["cpu_model"], rep.Machine["nproc"], rep.Date[:10])
	p.Y.Label.Text = "ratio (library / baseline), clipped at 4"
	n := len(cs)
	colours := map[string]color.Color{
		"met":    color.RGBA{R: 46, G: 160, B: 67, A: 255},
		"missed": color.RGBA{R: 207, G: 34, B: 46, A: 255},
		"report": color.RGBA{R: 140, G: 140, B: 140, A: 255},
	}
	series := map[string]plotter.Values{"met": make(plotter.Values, n), "missed": make(plotter.Values, n), "report": make(plotter.Values, n)}
	var targets plotter.XYs
	var labels plotter.XYLabels
	names := make([]string, n)
	for i, c := range cs {
		kind := "report"
		if c.Met != nil {
			kind = "missed"
			if *c.Met {
				kind = "met"
			}
			targets = append(targets, plotter.XY{X: float64(i), Y: c.Target})
		}
		series[kind][i] = c.Ratio
		names[i] = shortName(c)
		labels.XYs = append(labels.XYs, plotter.XY{X: float64(i), Y: c.Ratio})
		labels.Labels = append(labels.Labels, fmt.Sprintf("%.2f", c.Ratio))
	}
	// Clip tall bars (a p99 ratio can be 10x) so the targets stay
	// readable; the label over each bar gives its true value.
	const yMax = 4.0
	for _, v := range series {
		for i := range v {
			v[i] = min(v[i], yMax)
		}
	}
	for i := range labels.XYs {
		labels.XYs[i].Y = min(labels.XYs[i].Y, yMax)
	}
	w := vg.Points(14)
	for _, k := range []string{"met", "missed", "report"} {
		b, err := plotter.NewBarChart(series[k], w)
		if err != nil {
			return err
		}
		b.Color = colours[k]
		b.LineStyle.Width = 0
		p.Add(b)
	}
	if len(targets) > 0 {
		s, err := plotter.NewScatter(targets)
		if err != nil {
			return err
		}
		s.GlyphStyle.Shape = draw.BoxGlyph{}
		s.GlyphStyle.Radius = vg.Points(3.5)
		s.GlyphStyle.Color = color.Black
		p.Add(s)
		p.Legend.Add("performance target", s)
	}
	l, err := plotter.NewLabels(labels)
	if err != nil {
		return err
	}
	for i := range l.TextStyle {
		l.TextStyle[i].XAlign = -0.5
		l.TextStyle[i].YAlign = 0
		l.TextStyle[i].Font.Size = vg.Points(8)
	}
	p.Add(l)
	one := plotter.NewFunction(func(float64) float64 { return 1 })
	one.Dashes = []vg.Length{vg.Points(3), vg.Points(3)}
	one.Color = color.Gray{Y: 100}
	p.Add(one)
	p.NominalX(names...)
	p.X.Tick.Label.Rotation = 0.6
	p.X.Tick.Label.XAlign = draw.XRight
	p.X.Tick.Label.YAlign = draw.YCenter
	p.X.Tick.Label.Font.Size = vg.Points(8)
	p.Y.Min = 0
	p.Y.Max = yMax + 0.3
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	return p.Save(vg.Points(820), vg.Points(520), path)
}

func shortName(c *comparison) string {
	r := strings.NewReplacer(
		": msg/s vs ", " vs ", ": Gbit/s vs ", " vs ", ": RTT ", " ", " vs raw quic-go", " vs quic-go",
		"1 channel", "1 ch", "first message to a new peer", "first msg", "into one endpoint", "",
		"8 channels x 64 KiB", "8 ch x 64 KiB", " (both from Rust)", " (Rust)", " (library from C)", " (C)",
		"diagnostic: engine from Go (no C API), ", "engine/Go: ", "dial+data", "dial", " bulk", " bulk", "ping-pong 64 B", "ping-pong",
	)
	return r.Replace(c.Name)
}

func chartMain(args []string) error {
	fs := flag.NewFlagSet("chart", flag.ExitOnError)
	in := fs.String("in", "bench/results/latest.json", "report")
	out := fs.String("out", "bench/results/ratios.png", "PNG")
	fs.Parse(args)
	b, err := os.ReadFile(*in)
	if err != nil {
		return err
	}
	var rep report
	if err := json.Unmarshal(b, &rep); err != nil {
		return err
	}
	return drawChart(&rep, *out)
}

func tableMain(args []string) error {
	fs := flag.NewFlagSet("table", flag.ExitOnError)
	in := fs.String("in", "bench/results/latest.json", "report")
	fs.Parse(args)
	b, err := os.ReadFile(*in)
	if err != nil {
		return err
	}
	var rep report
	if err := json.Unmarshal(b, &rep); err != nil {
		return err
	}
	printTable(os.Stdout, &rep)
	return nil
}
