#include "recipes/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/check.h"
#include "core/fs.h"

namespace r1kit::recipes {
namespace {

std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

// Tick label: as few digits as the tick step needs.
std::string tick_label(double v, double step) {
  int decimals = 0;
  while (decimals < 6 && std::fabs(step * std::pow(10.0, decimals) - std::round(step * std::pow(10.0, decimals))) > 1e-9)
    ++decimals;
  if (std::fabs(v) < step * 1e-9) v = 0;  // no "-0"
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

constexpr const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"};

}  // namespace

std::vector<double> nice_ticks(double lo, double hi, int target) {
  if (!(hi > lo)) return {lo};
  const double raw = (hi - lo) / std::max(1, target);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    step = m * mag;
    if (step >= raw) break;
  }
  std::vector<double> ticks;
  // k * step (not repeated addition) so rounding errors do not accumulate.
  for (double k = std::ceil(lo / step - 1e-9); k * step <= hi + step * 1e-9; k += 1) ticks.push_back(k * step);
  return ticks;
}

std::string render_line_chart(const std::vector<PlotSeries>& series, const PlotOptions& opts) {
  double x_lo = INFINITY, x_hi = -INFINITY, y_lo = INFINITY, y_hi = -INFINITY;
  for (const auto& s : series) {
    R1_CHECK(s.x.size() == s.y.size(), "plot '", opts.title, "': series '", s.name, "' has ", s.x.size(),
             " x values and ", s.y.size(), " y values");
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
      x_lo = std::min(x_lo, s.x[i]);
      x_hi = std::max(x_hi, s.x[i]);
      y_lo = std::min(y_lo, s.y[i]);
      y_hi = std::max(y_hi, s.y[i]);
    }
  }
  const bool empty = !std::isfinite(x_lo);
  if (empty) x_lo = 0, x_hi = 1, y_lo = 0, y_hi = 1;
  if (opts.y_from_zero) y_lo = std::min(y_lo, 0.0), y_hi = std::max(y_hi, 0.0);
  if (x_hi <= x_lo) x_lo -= 0.5, x_hi += 0.5;
  if (y_hi <= y_lo) {
    const double pad = std::max(std::fabs(y_lo) * 0.1, 0.5);
    y_lo -= pad, y_hi += pad;
  }
  const std::vector<double> xt = nice_ticks(x_lo, x_hi);
  std::vector<double> yt = nice_ticks(y_lo, y_hi);
  const double x_step = xt.size() > 1 ? xt[1] - xt[0] : 1, y_step = yt.size() > 1 ? yt[1] - yt[0] : 1;
  // Extend the y range to whole ticks so the curve never touches the frame unlabelled.
  y_lo = std::min(y_lo, std::floor(y_lo / y_step) * y_step);
  y_hi = std::max(y_hi, std::ceil(y_hi / y_step) * y_step);
  yt.clear();
  for (double k = std::round(y_lo / y_step); k * y_step <= y_hi + y_step * 1e-9; k += 1) yt.push_back(k * y_step);

  const double left = 70, right = opts.width - 20.0, top = 40, bottom = opts.height - 55.0;
  auto px = [&](double x) { return left + (x - x_lo) / (x_hi - x_lo) * (right - left); };
  auto py = [&](double y) { return bottom - (y - y_lo) / (y_hi - y_lo) * (bottom - top); };

  std::string svg;
  svg += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  svg += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(opts.width) + "\" height=\"" +
         std::to_string(opts.height) + "\" viewBox=\"0 0 " + std::to_string(opts.width) + " " +
         std::to_string(opts.height) + "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  svg += "<rect x=\"0\" y=\"0\" width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  svg += "<text x=\"" + fmt(opts.width / 2.0) + "\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">" +
         xml_escape(opts.title) + "</text>\n";
  // Grid, ticks and tick labels.
  svg += "<g stroke=\"#e0e0e0\" stroke-width=\"1\">\n";
  for (double t : xt)
    if (t >= x_lo && t <= x_hi)
      svg += "<line x1=\"" + fmt(px(t)) + "\" y1=\"" + fmt(top) + "\" x2=\"" + fmt(px(t)) + "\" y2=\"" + fmt(bottom) + "\"/>\n";
  for (double t : yt)
    if (t >= y_lo && t <= y_hi)
      svg += "<line x1=\"" + fmt(left) + "\" y1=\"" + fmt(py(t)) + "\" x2=\"" + fmt(right) + "\" y2=\"" + fmt(py(t)) + "\"/>\n";
  svg += "</g>\n<g fill=\"#333\">\n";
  for (double t : xt)
    if (t >= x_lo && t <= x_hi)
      svg += "<text x=\"" + fmt(px(t)) + "\" y=\"" + fmt(bottom + 16) + "\" text-anchor=\"middle\">" +
             tick_label(t, x_step) + "</text>\n";
  for (double t : yt)
    if (t >= y_lo && t <= y_hi)
      svg += "<text x=\"" + fmt(left - 6) + "\" y=\"" + fmt(py(t) + 4) + "\" text-anchor=\"end\">" +
             tick_label(t, y_step) + "</text>\n";
  svg += "</g>\n";
  // Axes and labels.
  svg += "<rect x=\"" + fmt(left) + "\" y=\"" + fmt(top) + "\" width=\"" + fmt(right - left) + "\" height=\"" +
         fmt(bottom - top) + "\" fill=\"none\" stroke=\"#333\"/>\n";
  svg += "<text x=\"" + fmt((left + right) / 2) + "\" y=\"" + fmt(opts.height - 15.0) + "\" text-anchor=\"middle\">" +
         xml_escape(opts.x_label) + "</text>\n";
  svg += "<text x=\"16\" y=\"" + fmt((top + bottom) / 2) + "\" text-anchor=\"middle\" transform=\"rotate(-90 16 " +
         fmt((top + bottom) / 2) + ")\">" + xml_escape(opts.y_label) + "</text>\n";
  if (empty)
    svg += "<text x=\"" + fmt((left + right) / 2) + "\" y=\"" + fmt((top + bottom) / 2) +
           "\" text-anchor=\"middle\" fill=\"#999\">no data</text>\n";
  // Lines (broken at non-finite points) and a legend.
  for (size_t k = 0; k < series.size(); ++k) {
    const auto& s = series[k];
    const char* color = kColors[k % std::size(kColors)];
    std::string points;
    auto flush = [&] {
      if (!points.empty())
        svg += "<polyline fill=\"none\" stroke=\"" + std::string(color) + "\" stroke-width=\"1.8\" points=\"" + points +
               "\"/>\n";
      points.clear();
    };
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) {
        flush();
        continue;
      }
      points += (points.empty() ? "" : " ") + fmt(px(s.x[i])) + "," + fmt(py(s.y[i]));
    }
    if (s.x.size() == 1 && std::isfinite(s.x[0]) && std::isfinite(s.y[0]))
      svg += "<circle cx=\"" + fmt(px(s.x[0])) + "\" cy=\"" + fmt(py(s.y[0])) + "\" r=\"3\" fill=\"" + color + "\"/>\n";
    flush();
    const double ly = top + 16 + 16.0 * k;
    svg += "<line x1=\"" + fmt(left + 10) + "\" y1=\"" + fmt(ly - 4) + "\" x2=\"" + fmt(left + 30) + "\" y2=\"" +
           fmt(ly - 4) + "\" stroke=\"" + color + "\" stroke-width=\"2\"/>\n";
    svg += "<text x=\"" + fmt(left + 35) + "\" y=\"" + fmt(ly) + "\">" + xml_escape(s.name) + "</text>\n";
  }
  svg += "</svg>\n";
  return svg;
}

void write_line_chart(const std::string& path, const std::vector<PlotSeries>& series, const PlotOptions& opts) {
  write_file_atomic(path, render_line_chart(series, opts));
}

std::string sparkline(const std::vector<double>& values, int width) {
  static const char* kBars[] = {"▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
  std::vector<double> v;
  for (double x : values)
    if (std::isfinite(x)) v.push_back(x);
  if (v.empty() || width <= 0) return "";
  // Resample by averaging buckets when there are more points than characters.
  std::vector<double> cols;
  const size_t n = std::min<size_t>(v.size(), static_cast<size_t>(width));
  for (size_t c = 0; c < n; ++c) {
    const size_t a = c * v.size() / n, b = std::max(a + 1, (c + 1) * v.size() / n);
    double sum = 0;
    for (size_t i = a; i < b; ++i) sum += v[i];
    cols.push_back(sum / (b - a));
  }
  const auto [mn, mx] = std::minmax_element(cols.begin(), cols.end());
  std::string out;
  for (double c : cols) {
    const int level = *mx > *mn ? static_cast<int>(std::lround((c - *mn) / (*mx - *mn) * 7)) : 3;
    out += kBars[std::clamp(level, 0, 7)];
  }
  return out;
}

}  // namespace r1kit::recipes
