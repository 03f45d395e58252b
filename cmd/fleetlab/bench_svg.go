package main

import (
	"fmt"
	"math"
	"os"
	"strings"
)

// svgPalette colours the points' lines.
var svgPalette = []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf", "#7f7f7f"}

// writeBenchSVG writes prefix-completed.svg, the devices completed over time of every point (as a share of its
// devices, so fleets of every size share the axes), and prefix-sweep.svg, devices per minute by fleet size.
func writeBenchSVG(prefix string, points []point) ([]string, error) {
	completed := prefix + "-completed.svg"
	sweep := prefix + "-sweep.svg"
	if err := os.WriteFile(completed, []byte(completedSVG(points)), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(sweep, []byte(sweepSVG(points)), 0o644); err != nil {
		return nil, err
	}
	return []string{completed, sweep}, nil
}

const (
	svgW, svgH        = 720, 420
	svgLeft, svgRight = 70, 20
	svgTop, svgBottom = 40, 50
	plotW, plotH      = svgW - svgLeft - svgRight, svgH - svgTop - svgBottom
)

func svgHeader(b *strings.Builder, title, xlabel, ylabel string) {
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", svgW, svgH, svgW, svgH)
	fmt.Fprintf(b, `<rect width="%d" height="%d" fill="white"/>`+"\n", svgW, svgH)
	fmt.Fprintf(b, `<text x="%d" y="22" font-size="14" font-weight="bold">%s</text>`+"\n", svgLeft, svgEscape(title))
	fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="middle">%s</text>`+"\n", svgLeft+plotW/2, svgH-12, svgEscape(xlabel))
	fmt.Fprintf(b, `<text x="16" y="%d" text-anchor="middle" transform="rotate(-90 16 %d)">%s</text>`+"\n", svgTop+plotH/2, svgTop+plotH/2, svgEscape(ylabel))
	fmt.Fprintf(b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#444"/>`+"\n", svgLeft, svgTop, plotW, plotH)
}

func svgEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}

// niceMax rounds v up to 1, 2 or 5 times a power of ten.
func niceMax(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func completedSVG(points []point) string {
	var b strings.Builder
	svgHeader(&b, "Devices completed over time", "seconds since the deployment was created", "devices completed (% of the fleet)")
	xmax := 0.0
	for _, p := range points {
		if n := len(p.Completed); n > 0 {
			xmax = max(xmax, p.Completed[n-1])
		}
	}
	xmax = niceMax(xmax)
	for i := 0; i <= 4; i++ {
		x := svgLeft + plotW*i/4
		y := svgTop + plotH - plotH*i/4
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">%.3g</text>`+"\n", x, svgTop+plotH+18, xmax*float64(i)/4)
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%d%%</text>`+"\n", svgLeft-6, y+4, 25*i)
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#ddd"/>`+"\n", svgLeft, y, svgLeft+plotW, y)
	}
	for i, p := range points {
		colour := svgPalette[i%len(svgPalette)]
		n := len(p.Completed)
		if n == 0 {
			continue
		}
		// The curve holds every finished device's end, or the ends by which evenly spaced shares of them had.
		share := func(k int) float64 {
			if n == p.Finished {
				return float64(k+1) / float64(p.Devices)
			}
			return float64(k) / float64(n-1) * float64(p.Finished) / float64(p.Devices)
		}
		pts := []string{fmt.Sprintf("%d,%d", svgLeft, svgTop+plotH)}
		for k := range n {
			pts = append(pts, svgXY(p.Completed[k]/xmax, share(k)))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", colour, strings.Join(pts, " "))
		fmt.Fprintf(&b, `<text x="%d" y="%d" fill="%s">%d devices (%s): %.2fs</text>`+"\n", svgLeft+10, svgTop+18+16*i, colour,
			p.Devices, svgEscape(p.Transport), p.RolloutS)
	}
	b.WriteString("</svg>\n")
	return b.String()
}

func svgXY(fx, fy float64) string {
	return fmt.Sprintf("%.1f,%.1f", svgLeft+fx*plotW, svgTop+plotH-fy*plotH)
}

func sweepSVG(points []point) string {
	var b strings.Builder
	svgHeader(&b, "Rollout throughput by fleet size", "devices (log scale)", "devices per minute")
	lo, hi := math.Inf(1), math.Inf(-1)
	ymax := 0.0
	for _, p := range points {
		lo, hi = min(lo, float64(p.Devices)), max(hi, float64(p.Devices))
		ymax = max(ymax, p.DevicesPerMin)
	}
	if len(points) == 0 {
		lo, hi = 1, 10
	}
	llo, lhi := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if lhi == llo {
		lhi++
	}
	ymax = niceMax(ymax)
	for d := llo; d <= lhi; d++ {
		fx := (d - llo) / (lhi - llo)
		x := svgLeft + int(fx*plotW)
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">%.0f</text>`+"\n", x, svgTop+plotH+18, math.Pow(10, d))
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#ddd"/>`+"\n", x, svgTop, x, svgTop+plotH)
	}
	for i := 0; i <= 4; i++ {
		y := svgTop + plotH - plotH*i/4
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%.0f</text>`+"\n", svgLeft-6, y+4, ymax*float64(i)/4)
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#ddd"/>`+"\n", svgLeft, y, svgLeft+plotW, y)
	}
	var pts []string
	for _, p := range points {
		fx := (math.Log10(float64(p.Devices)) - llo) / (lhi - llo)
		xy := svgXY(fx, p.DevicesPerMin/ymax)
		pts = append(pts, xy)
		x, y, _ := strings.Cut(xy, ",")
		fmt.Fprintf(&b, `<circle cx="%s" cy="%s" r="4" fill="%s"/>`+"\n", x, y, svgPalette[0])
		anchor := "middle"
		if fx > 0.9 {
			anchor = "end"
		}
		fmt.Fprintf(&b, `<text x="%s" y="%s" dy="-8" text-anchor="%s">%.0f/min</text>`+"\n", x, y, anchor, p.DevicesPerMin)
	}
	fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", svgPalette[0], strings.Join(pts, " "))
	b.WriteString("</svg>\n")
	return b.String()
}
