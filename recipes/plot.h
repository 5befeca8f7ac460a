// Line charts written by r1kit itself: SVG files (axes, ticks, labels, title, legend) for the run
// directory's plots/, and one-line unicode sparklines for the console. Torch-free.
#pragma once
#include <string>
#include <vector>

namespace r1kit::recipes {

// One line of a chart. Points whose x or y is not finite are skipped (a gap, not a zero).
struct PlotSeries {
  std::string name;      // legend entry
  std::vector<double> x;  // same length as y
  std::vector<double> y;
};

struct PlotOptions {
  std::string title;        // drawn above the plot area
  std::string x_label = "step";
  std::string y_label;
  int width = 720;          // pixels
  int height = 420;
  bool y_from_zero = false;  // include 0 in the y range (e.g. accuracies, lengths)
};

// Renders a standalone SVG document. Throws Error when a series' x and y lengths differ.
std::string render_line_chart(const std::vector<PlotSeries>& series, const PlotOptions& opts);

// render_line_chart + atomic write.
void write_line_chart(const std::string& path, const std::vector<PlotSeries>& series, const PlotOptions& opts);

// "Nice" tick positions (steps of 1, 2 or 5 x 10^k) covering [lo, hi], about `target` of them.
std::vector<double> nice_ticks(double lo, double hi, int target = 6);

// A sparkline of `values` resampled to at most `width` characters ("▁▂▃▄▅▆▇█"); "" for no values.
std::string sparkline(const std::vector<double>& values, int width = 60);

}  // namespace r1kit::recipes
